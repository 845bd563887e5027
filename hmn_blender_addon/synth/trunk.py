"""Vertebra-level trunk motion in walking: pelvis in the lab, lumbar (L1 on S1) and thoracic (T1 on L1).

Waveforms over the gait phase (0 at the left heel strike, 2 pi per stride), with ranges (max - min)
drawn uniformly from physiological intervals at scale 1 (REFERENCES.md section 1: OpenSim Gait2354,
Smith 2002, Crosbie 1997): pelvic tilt 3-5 deg (twice per stride), obliquity 6-10 and rotation 8-12
(once per stride); lumbar sagittal 3-6 (twice per stride), frontal 8-12 (against the obliquity:
the trunk stays upright over a dropping pelvis), transverse 6-10 (counter-rotating the pelvis);
thoracic (T1 on L1) sagittal 2-3 and frontal 4-6; in the transverse plane the thorax's rotation in
the lab takes a range of 6-10 and a phase relative to the pelvis's (``coordination_phase``: 0 =
in phase, 180 deg = anti-phase), and the thoracic levels take what the pelvis and lumbar rotations
of the walk at scale 1 without asymmetry leave of it (small-angle sum). ``rom_scale`` multiplies
the lumbar ranges only (a stiff lumbar spine over a normal pelvis and a normal thoracic spine).
``asymmetry`` a stretches excursions toward the left by (1 + a) and shrinks those toward the right
by (1 - a) in the lumbar frontal and transverse planes and the pelvic obliquity and rotation (an
antalgic-like gait), keeping each range. The thoracic motion stays that of the unscaled,
symmetric walk, so that in every plane the thorax carries what the lumbar scale and the asymmetry
change (at a scale other than 1 or with asymmetry the thorax-pelvis phase drifts from
``coordination_phase``; the truth's metrics are measured on the motion made).

Each region's angles are spread over its intervertebral joints with per-plane weights from
White & Panjabi's segmental ranges (:mod:`hmn_blender_addon.spine.segments`, shared with the
pipeline): flexion mostly low lumbar, axial rotation mostly mid-thoracic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..metrics.angles import rotation_from_cardan
from ..spine.segments import LUMBAR_LEVEL_ROM, THORACIC_LEVEL_ROM, level_weights

RANGES_DEG = {
    "pelvis": ((3.0, 5.0), (6.0, 10.0), (8.0, 12.0)),
    "lumbar": ((3.0, 6.0), (8.0, 12.0), (6.0, 10.0)),
    "thoracic": ((2.0, 3.0), (4.0, 6.0), (6.0, 10.0)),  # transverse: the thorax in the lab
}
# Thorax-pelvis transverse relative phase of healthy walking against speed: in phase when slow,
# toward anti-phase when fast (REFERENCES.md section 1: Lamoth 2002, Selles 2001). The two points
# (about 20 deg at 0.4 m/s, 100 deg at 1.5 m/s) are recalled from Lamoth et al. 2002's treadmill
# speeds 1.4-5.4 km/h, UNVERIFIED: the default of synthetic clips only, never a norm in a report.
HEALTHY_PHASE_POINTS = ((0.4, 20.0), (1.5, 100.0))


@dataclass(frozen=True)
class TrunkAmplitudes:
    """Ranges (max - min, degrees) per region and plane (sagittal, frontal, transverse);
    ``lumbar_unscaled``: the lumbar ranges drawn, before ``rom_scale``."""

    pelvis: tuple[float, float, float]
    lumbar: tuple[float, float, float]
    thoracic: tuple[float, float, float]
    lumbar_unscaled: tuple[float, float, float]


def sample_amplitudes(rng: np.random.Generator, rom_scale: float) -> TrunkAmplitudes:
    """Ranges drawn uniformly from :data:`RANGES_DEG`; lumbar ones multiplied by ``rom_scale``."""
    drawn = {region: tuple(float(rng.uniform(*r)) for r in ranges) for region, ranges in RANGES_DEG.items()}
    lumbar = tuple(rom_scale * v for v in drawn["lumbar"])
    return TrunkAmplitudes(drawn["pelvis"], lumbar, drawn["thoracic"], drawn["lumbar"])


def healthy_relative_phase_deg(speed_m_s: float) -> float:
    """Thorax-pelvis transverse relative phase (deg) of healthy walking at a speed (clamped outside
    :data:`HEALTHY_PHASE_POINTS`)."""
    (slow, slow_deg), (fast, fast_deg) = HEALTHY_PHASE_POINTS
    return float(np.interp(speed_m_s, [slow, fast], [slow_deg, fast_deg]))


def _skew(wave: np.ndarray, asymmetry: float) -> np.ndarray:
    """Stretch positive (leftward) excursions by 1 + a and shrink negative ones by 1 - a."""
    return wave * np.where(wave > 0, 1.0 + asymmetry, 1.0 - asymmetry)


def region_angles_rad(
    phase_rad: np.ndarray, amplitudes: TrunkAmplitudes, asymmetry: float, coordination_phase_rad: float
) -> dict[str, np.ndarray]:
    """(T, 3) Cardan angles (flexion, bending +left, rotation +left) per region over the gait phase.

    Phase 0 is the left heel strike: the pelvis is turned toward the right (left hip forward) and,
    loading the left leg, drops on the right in early stance; the lumbar spine bends and turns the
    other way, the thoracic spine continues the bending, and the thorax turns in the lab
    ``coordination_phase_rad`` after the pelvis (in the walk at ``lumbar_unscaled`` without
    asymmetry).
    """
    phi = np.asarray(phase_rad, dtype=np.float64)
    half = {region: np.radians(np.asarray(ranges)) / 2 for region, ranges in vars(amplitudes).items()}
    side, turn, twice = np.sin(phi), np.cos(phi), np.cos(2 * phi)

    def planes(region: str, sagittal: np.ndarray, frontal: np.ndarray, transverse: np.ndarray) -> np.ndarray:
        return half[region] * np.stack([sagittal, frontal, transverse], axis=1)

    pelvis = planes("pelvis", twice, _skew(-side, asymmetry), _skew(-turn, asymmetry))
    lumbar = planes("lumbar", np.cos(2 * phi + 0.5), _skew(side, asymmetry), _skew(turn, asymmetry))
    # The thoracic levels' rotation is set once, against the unscaled symmetric walk: scaling or
    # skewing the lumbar ranges then turns the thorax with them, as it bends it in the other planes.
    thorax_in_lab = -half["thoracic"][2] * np.cos(phi - coordination_phase_rad)
    thoracic = planes("thoracic", twice, side, np.zeros_like(phi))
    thoracic[:, 2] = thorax_in_lab + (half["pelvis"][2] - half["lumbar_unscaled"][2]) * turn
    return {"pelvis": pelvis, "lumbar": lumbar, "thoracic": thoracic}


def joint_rotations(lumbar_rad: np.ndarray, thoracic_rad: np.ndarray) -> np.ndarray:
    """(T, 18, 3, 3) intervertebral rotations Q_k (joints L5-S1 .. C7-T1) from region angles (T, 3)."""
    frames = lumbar_rad.shape[0]
    angles = np.zeros((frames, 18, 3))
    angles[:, :5] = lumbar_rad[:, None] * level_weights(LUMBAR_LEVEL_ROM)
    angles[:, 5:17] = thoracic_rad[:, None] * level_weights(THORACIC_LEVEL_ROM)
    return rotation_from_cardan(angles)
