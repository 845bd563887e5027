"""Thorax-pelvis coordination as the continuous relative phase (DESIGN.md 6).

People with persistent low back pain rotate thorax and pelvis more in phase (REFERENCES.md
section 1: Smith et al. 2022, Lamoth 2002), in the transverse and frontal planes. Following Lamb &
Stöckl 2014 (Clin Biomech 29:484-493, "On the use of continuous relative phase"): each angle is
centred, turned into an analytic signal by the Hilbert transform, its phase taken from that, and
the continuous relative phase (CRP) is the wrapped difference of the two phases; its absolute
value is reported (0 deg = in phase, 180 deg = anti-phase).

Centring subtracts a running mean one stride long (for a periodic angle that is exactly its mean,
and it also removes a slow drift of the heading); the signal is extended periodically by one
stride at both ends (the first stride before it, the last after it) before the transform, which
keeps the phase near the clip's ends from bending.

The thorax is the T1 vertebra's anatomical frame (the top of the thoracic chain, where the arms'
collars hang), the pelvis S1's, both relative to the lab frame as :func:`.angles.pelvic_angles`.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.signal import hilbert

PLANES = {"transverse": 2, "frontal": 1}  # column of the (T, 3) Cardan angles


def centred(angle: np.ndarray, period_frames: int) -> np.ndarray:
    """(T,) angle minus its running mean over ``period_frames`` (one stride)."""
    window = max(1, min(int(period_frames), len(angle)))
    return angle - uniform_filter1d(np.asarray(angle, dtype=np.float64), window, mode="nearest")


def hilbert_phase_rad(angle: np.ndarray, period_frames: int) -> np.ndarray:
    """(T,) phase (radians) of an angle's analytic signal, extended by a stride at each end and centred."""
    angle = np.asarray(angle, dtype=np.float64)
    pad = min(int(period_frames), len(angle) - 1)
    # periodic extension: the stride before the clip repeats the first, the one after it the last,
    # each shifted by a stride's drift so that the joins stay continuous
    before = angle[:pad] - (angle[pad] - angle[0])
    after = angle[-pad:] + (angle[-1] - angle[-1 - pad])
    padded = np.concatenate([before, angle, after])
    phase = np.angle(hilbert(centred(padded, period_frames)))
    return phase[pad : pad + len(angle)]


def relative_phase_deg(thorax_angle: np.ndarray, pelvis_angle: np.ndarray, period_frames: int) -> np.ndarray:
    """(T,) |CRP| in degrees, 0 (in phase) to 180 (anti-phase), of two (T,) angles."""
    difference = hilbert_phase_rad(thorax_angle, period_frames) - hilbert_phase_rad(
        pelvis_angle, period_frames
    )
    return np.degrees(np.abs(np.angle(np.exp(1j * difference))))


def coordination_markers(
    thorax_deg: np.ndarray, pelvis_deg: np.ndarray, cycles: list[tuple[int, int]]
) -> tuple[dict, dict[str, np.ndarray]]:
    """The ``metrics.coordination_deg`` block and the per-frame |CRP| curves.

    Args:
        thorax_deg, pelvis_deg: (T, 3) Cardan angles in the lab (tilt, obliquity, rotation), degrees.
        cycles: [(start, end)] frames of the gait cycles (or the whole clip).
    Returns:
        ({plane: {"mean", "sd", "per_cycle"}}: the mean |CRP| of each cycle, their mean and SD;
        {plane: (T,) |CRP| in degrees}) for the transverse and frontal planes.
    """
    period = round(float(np.mean([end - start for start, end in cycles])))
    block, curves = {}, {}
    for plane, column in PLANES.items():
        crp = relative_phase_deg(thorax_deg[:, column], pelvis_deg[:, column], period)
        per_cycle = np.array([crp[start:end].mean() for start, end in cycles])
        block[plane] = {
            "mean": float(per_cycle.mean()),
            "sd": float(per_cycle.std(ddof=1)) if len(per_cycle) > 1 else 0.0,
            "per_cycle": [float(v) for v in per_cycle],
        }
        curves[plane] = crp
    return block, curves
