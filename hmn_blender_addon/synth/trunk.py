"""Vertebra-level trunk motion in walking: pelvis in the lab, lumbar (L1 on S1) and thoracic (T1 on L1).

Waveforms over the gait phase (0 at the left heel strike, 2 pi per stride), with ranges (max - min)
drawn uniformly from physiological intervals at scale 1 (REFERENCES.md section 1: OpenSim Gait2354,
Smith 2002, Crosbie 1997): pelvic tilt 3-5 deg (twice per stride), obliquity 6-10 and rotation 8-12
(once per stride); lumbar sagittal 3-6 (twice per stride), frontal 8-12 (against the obliquity:
the trunk stays upright over a dropping pelvis), transverse 6-10 (counter-rotating the pelvis);
thoracic sagittal 2-3, frontal 4-6, transverse 6-10. ``rom_scale`` multiplies the lumbar ranges
only (a stiff lumbar spine over a normal pelvis). ``asymmetry`` a stretches excursions toward the
left by (1 + a) and shrinks those toward the right by (1 - a) in the lumbar frontal and transverse
planes and the pelvic obliquity and rotation (an antalgic-like gait), keeping each range.

Each region's angles are spread over its intervertebral joints with per-plane weights from
White & Panjabi's segmental ranges (REFERENCES.md section 2, UNVERIFIED values recalled there):
flexion mostly low lumbar, axial rotation mostly mid-thoracic. Joint k (k = 1..18) rotates
vertebra k relative to vertebra k-1 about vertebra k's origin, in axes aligned with the body
(anatomical axes, SMPL's x left, y up, z anterior), so world rotations accumulate as
G_k = G_(k-1) Q_k from G_S1 = the pelvis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..metrics.angles import rotation_from_cardan

RANGES_DEG = {
    "pelvis": ((3.0, 5.0), (6.0, 10.0), (8.0, 12.0)),
    "lumbar": ((3.0, 6.0), (8.0, 12.0), (6.0, 10.0)),
    "thoracic": ((2.0, 3.0), (4.0, 6.0), (6.0, 10.0)),
}
# Segmental ranges (deg) per joint: flexion-extension, lateral bending, axial rotation.
# Lumbar joints L5-S1, L4-L5, L3-L4, L2-L3, L1-L2 (joints 1..5).
LUMBAR_LEVEL_ROM = np.array([[17, 3, 1], [16, 6, 2], [15, 8, 2], [14, 6, 2], [12, 6, 2]], dtype=np.float64)
# Thoracic joints T12-L1, T11-T12, ..., T1-T2 (joints 6..17); C7-T1 (joint 18) stays still.
THORACIC_LEVEL_ROM = np.array(
    [[12, 8, 2], [12, 9, 2], [9, 7, 2], [6, 6, 4], [6, 6, 7], [6, 6, 8], [5, 6, 8], [4, 6, 8]]
    + [[4, 6, 9]] * 4,
    dtype=np.float64,
)


@dataclass(frozen=True)
class TrunkAmplitudes:
    """Ranges (max - min, degrees) per region and plane (sagittal, frontal, transverse)."""

    pelvis: tuple[float, float, float]
    lumbar: tuple[float, float, float]
    thoracic: tuple[float, float, float]


def sample_amplitudes(rng: np.random.Generator, rom_scale: float) -> TrunkAmplitudes:
    """Ranges drawn uniformly from :data:`RANGES_DEG`; lumbar ones multiplied by ``rom_scale``."""
    drawn = {region: tuple(float(rng.uniform(*r)) for r in ranges) for region, ranges in RANGES_DEG.items()}
    lumbar = tuple(rom_scale * v for v in drawn["lumbar"])
    return TrunkAmplitudes(drawn["pelvis"], lumbar, drawn["thoracic"])


def _skew(wave: np.ndarray, asymmetry: float) -> np.ndarray:
    """Stretch positive (leftward) excursions by 1 + a and shrink negative ones by 1 - a."""
    return wave * np.where(wave > 0, 1.0 + asymmetry, 1.0 - asymmetry)


def region_angles_rad(
    phase_rad: np.ndarray, amplitudes: TrunkAmplitudes, asymmetry: float
) -> dict[str, np.ndarray]:
    """(T, 3) Cardan angles (flexion, bending +left, rotation +left) per region over the gait phase.

    Phase 0 is the left heel strike: the pelvis is turned toward the right (left hip forward) and,
    loading the left leg, drops on the right in early stance; the lumbar spine bends and turns the
    other way, and the thoracic spine continues it.
    """
    phi = np.asarray(phase_rad, dtype=np.float64)
    half = {region: np.radians(np.asarray(ranges)) / 2 for region, ranges in vars(amplitudes).items()}
    side, turn, twice = np.sin(phi), np.cos(phi), np.cos(2 * phi)

    def planes(region: str, sagittal: np.ndarray, frontal: np.ndarray, transverse: np.ndarray) -> np.ndarray:
        return half[region] * np.stack([sagittal, frontal, transverse], axis=1)

    return {
        "pelvis": planes("pelvis", twice, _skew(-side, asymmetry), _skew(-turn, asymmetry)),
        "lumbar": planes("lumbar", np.cos(2 * phi + 0.5), _skew(side, asymmetry), _skew(turn, asymmetry)),
        "thoracic": planes("thoracic", twice, side, turn),
    }


def _level_weights(level_rom: np.ndarray) -> np.ndarray:
    """(K, 3) share of each joint in each plane."""
    return level_rom / level_rom.sum(axis=0, keepdims=True)


def joint_rotations(lumbar_rad: np.ndarray, thoracic_rad: np.ndarray) -> np.ndarray:
    """(T, 18, 3, 3) intervertebral rotations Q_k (joints L5-S1 .. C7-T1) from region angles (T, 3)."""
    frames = lumbar_rad.shape[0]
    angles = np.zeros((frames, 18, 3))
    angles[:, :5] = lumbar_rad[:, None] * _level_weights(LUMBAR_LEVEL_ROM)
    angles[:, 5:17] = thoracic_rad[:, None] * _level_weights(THORACIC_LEVEL_ROM)
    return rotation_from_cardan(angles)


def chain_world(
    pelvis_rotation: np.ndarray,
    pelvis_position_m: np.ndarray,
    joints: np.ndarray,
    rest_origins_m: np.ndarray,
    rest_pelvis_m: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """World rotations (T, 19, 3, 3) of the anatomical axes of S1..C7 and their origins (T, 19, 3).

    Args:
        pelvis_rotation: (T, 3, 3) pelvis (= S1) rotation in the lab; pelvis_position_m: (T, 3) its joint.
        joints: (T, 18, 3, 3) intervertebral rotations; rest_origins_m: (19, 3) rest vertebra origins
            in the body frame; rest_pelvis_m: (3,) the rest pelvis joint in that frame.
    """
    rotations = [pelvis_rotation]
    origins = [pelvis_position_m + np.einsum("tij,j->ti", pelvis_rotation, rest_origins_m[0] - rest_pelvis_m)]
    for k in range(1, len(rest_origins_m)):  # 18 levels: the chain is inherently sequential
        origins.append(
            origins[-1] + np.einsum("tij,j->ti", rotations[-1], rest_origins_m[k] - rest_origins_m[k - 1])
        )
        rotations.append(rotations[-1] @ joints[:, k - 1])
    return np.stack(rotations, axis=1), np.stack(origins, axis=1)
