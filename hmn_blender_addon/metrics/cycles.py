"""Gait events, cycles, per-cycle ranges, the symmetry index and the ``metrics`` block (DESIGN.md 6, 10).

:func:`walk_metrics` makes the whole block, and the curves its plots draw: the spine's
(:func:`spine_metrics`), the gait markers (:mod:`.gait`) and the thorax-pelvis coordination
(:mod:`.coordination`).

Heel strikes follow Zeni et al. 2008 (REFERENCES.md section 4): a heel strike is a maximum of the
heel's position relative to the sacrum along the direction of progression; the ankle joint centre
stands in for the heel and the pelvis joint for the sacrum.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.signal import find_peaks

from ..skeleton import SMPL_JOINT_INDEX, VERTEBRA_NAMES
from .angles import Y_UP, lab_rotation, lumbar_angles, pelvic_angles
from .coordination import coordination_markers
from .gait import gait_markers

# The shortest plausible stride (same foot) and the share of the signal's span a peak must stand
# out by: walking strides last about 0.9 to 1.4 s.
MIN_STRIDE_S = 0.6
MIN_PEAK_PROMINENCE = 0.15
# Opposite feet strike about half a stride apart; two closer than this cannot both be strikes
# (a noisy bump at a clip's edge, say), and the one whose heel is less far forward is dropped.
MIN_STEP_S = 0.25


def heel_strikes(heel_m: np.ndarray, sacrum_m: np.ndarray, forward: np.ndarray, fps: float) -> list[int]:
    """Heel-strike frames of one foot (Zeni): maxima of (heel - sacrum) along the progression.

    Args:
        heel_m: (T, 3) heel (or ankle) positions; sacrum_m: (T, 3); forward: (3,) unit direction of
            progression; fps: frames per second.
    """
    signal = (heel_m - sacrum_m) @ forward
    span = float(signal.max() - signal.min())
    if span <= 0:
        return []
    peaks, _ = find_peaks(
        signal, distance=max(1, round(MIN_STRIDE_S * fps)), prominence=MIN_PEAK_PROMINENCE * span
    )
    return [int(p) for p in peaks]


def heel_strikes_from_joints(joints_m: np.ndarray, fps: float) -> dict[str, list[int]]:
    """{"left": [...], "right": [...]} heel-strike frames from (T, 24, 3) SMPL joints in any metric frame.

    Of two strikes of opposite feet closer than :data:`MIN_STEP_S`, the one whose heel is less far
    forward (as a share of its foot's range) is dropped.
    """
    pelvis = joints_m[:, SMPL_JOINT_INDEX["pelvis"]]
    forward = lab_rotation(pelvis, up=_up_of(joints_m))[:, 2]
    strikes, reach = {}, {}
    for side in ("left", "right"):
        heel = joints_m[:, SMPL_JOINT_INDEX[f"{side}_ankle"]]
        strikes[side] = heel_strikes(heel, pelvis, forward, fps)
        signal = (heel - pelvis) @ forward
        reach[side] = (signal - signal.min()) / max(float(np.ptp(signal)), 1e-12)
    events = sorted((frame, side) for side, frames in strikes.items() for frame in frames)
    for (frame_a, side_a), (frame_b, side_b) in itertools.pairwise(events):
        if side_a != side_b and frame_b - frame_a < MIN_STEP_S * fps:
            weaker = min((reach[side_a][frame_a], frame_a, side_a), (reach[side_b][frame_b], frame_b, side_b))
            if weaker[1] in strikes[weaker[2]]:
                strikes[weaker[2]].remove(weaker[1])
    return strikes


def _up_of(joints_m: np.ndarray) -> np.ndarray:
    """Unit up direction of a joint sequence: mean pelvis-to-neck direction (works in camera frames too)."""
    trunk = joints_m[:, SMPL_JOINT_INDEX["neck"]] - joints_m[:, SMPL_JOINT_INDEX["pelvis"]]
    up = trunk.mean(axis=0)
    return up / np.linalg.norm(up)


def gait_cycles(strikes: dict[str, list[int]]) -> list[tuple[int, int]]:
    """Complete cycles [heel strike, next heel strike of the same foot) of the foot with more of them
    (the left foot on a tie)."""
    per_foot = {side: list(itertools.pairwise(frames)) for side, frames in strikes.items()}
    return max((per_foot.get("left", []), per_foot.get("right", [])), key=len)


def cycle_ranges(angles: np.ndarray, cycles: list[tuple[int, int]]) -> np.ndarray:
    """(C, K) max minus min of (T, K) angles over each cycle's frames [start, end)."""
    return np.stack([np.ptp(angles[start:end], axis=0) for start, end in cycles])


def symmetry_index_pct(angle: np.ndarray, cycles: list[tuple[int, int]]) -> float:
    """Robinson's symmetry index of one signed angle (positive = toward the left), percent.

    L and R are the mean over cycles of the peak excursion toward the left and toward the right,
    measured from the cycle's mean; SI = 100 |L - R| / (0.5 (L + R)).
    """
    left, right = [], []  # one value per cycle: long and short cycles weigh the same
    for start, end in cycles:
        segment = angle[start:end]
        centred = segment - segment.mean()
        left.append(centred.max())
        right.append(-centred.min())
    mean_left, mean_right = float(np.mean(left)), float(np.mean(right))
    total = mean_left + mean_right
    return 0.0 if total <= 0 else 100.0 * abs(mean_left - mean_right) / (0.5 * total)


def _summary(values: np.ndarray) -> dict:
    return {
        "mean": float(np.mean(values)),
        "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
        "per_cycle": [float(v) for v in values],
    }


def spine_metrics(
    anatomical: np.ndarray,
    pelvis_path_m: np.ndarray,
    strikes: dict[str, list[int]],
    up: np.ndarray = Y_UP,
    vertebra_names: tuple[str, ...] = VERTEBRA_NAMES,
) -> dict:
    """The spine part of the ``metrics`` block (section 10) from anatomical vertebra frames.

    Args:
        anatomical: (T, L, 3, 3) anatomical frames (:func:`.angles.anatomical_rotations`) of the
            vertebrae in ``vertebra_names`` order (S1 first), in a world frame with ``up``.
        pelvis_path_m: (T, 3) pelvis (or S1) positions, for the direction of progression.
        strikes: heel-strike frames per foot ({"left": [...], "right": [...]}).
    Returns:
        {"cycles", "lumbar_rom_deg", "pelvic_range_deg", "symmetry_index_pct"} as in report.json.
    """
    cycles = gait_cycles(strikes)
    source = "heel_strikes"
    if not cycles:
        cycles, source = [(0, len(anatomical))], "whole_clip"
    lumbar = np.degrees(lumbar_angles(anatomical, vertebra_names.index("S1"), vertebra_names.index("L1")))
    lab = lab_rotation(pelvis_path_m, up=up)
    pelvic = np.degrees(pelvic_angles(anatomical[:, vertebra_names.index("S1")], lab))
    lumbar_rom = cycle_ranges(lumbar, cycles)
    pelvic_range = cycle_ranges(pelvic, cycles)
    lateral = symmetry_index_pct(lumbar[:, 1], cycles)
    axial = symmetry_index_pct(lumbar[:, 2], cycles)
    return {
        "cycles": {"count": len(cycles) if source == "heel_strikes" else 0, "source": source},
        "lumbar_rom_deg": {
            plane: _summary(lumbar_rom[:, k]) for k, plane in enumerate(("sagittal", "frontal", "transverse"))
        },
        "pelvic_range_deg": {
            plane: _summary(pelvic_range[:, k]) for k, plane in enumerate(("tilt", "obliquity", "rotation"))
        },
        "symmetry_index_pct": {
            "lateral_bending": lateral,
            "axial_rotation": axial,
            "spinal": 0.5 * (lateral + axial),
        },
    }


def thorax_pelvis_angles_deg(
    anatomical: np.ndarray,
    pelvis_path_m: np.ndarray,
    up: np.ndarray = Y_UP,
    vertebra_names: tuple[str, ...] = VERTEBRA_NAMES,
) -> tuple[np.ndarray, np.ndarray]:
    """(T, 3) thorax (T1) and (T, 3) pelvis (S1) angles in the lab (tilt, obliquity, rotation), degrees."""
    lab = lab_rotation(pelvis_path_m, up=up)
    thorax = pelvic_angles(anatomical[:, vertebra_names.index("T1")], lab)
    pelvis = pelvic_angles(anatomical[:, vertebra_names.index("S1")], lab)
    return np.degrees(thorax), np.degrees(pelvis)


def walk_metrics(
    anatomical: np.ndarray,
    joints_lab_m: np.ndarray,
    strikes: dict[str, list[int]],
    fps: float,
    scale: float = 1.0,
    scale_source: str = "fitted_shape",
    up: np.ndarray = Y_UP,
    vertebra_names: tuple[str, ...] = VERTEBRA_NAMES,
) -> tuple[dict, dict]:
    """The whole ``metrics`` block (section 10): :func:`spine_metrics` plus ``gait``
    (:func:`.gait.gait_markers`) and ``coordination_deg`` (:func:`.coordination.coordination_markers`),
    and the curves the plots draw: {"thorax_deg", "pelvis_deg": (T, 3), "relative_phase_deg":
    {plane: (T,)}}.

    Args:
        anatomical: (T, L, 3, 3) anatomical vertebra frames in the lab frame; joints_lab_m: (T, 24, 3);
        strikes: heel-strike frames per foot; fps; scale and scale_source: see :func:`.gait.gait_markers`.
    """
    pelvis_path = joints_lab_m[:, SMPL_JOINT_INDEX["pelvis"]]
    block = spine_metrics(anatomical, pelvis_path, strikes, up, vertebra_names)
    thorax, pelvis = thorax_pelvis_angles_deg(anatomical, pelvis_path, up, vertebra_names)
    block["gait"] = gait_markers(joints_lab_m, strikes, fps, scale, scale_source, up)
    cycles = gait_cycles(strikes) or [(0, len(thorax))]
    block["coordination_deg"], phase = coordination_markers(thorax, pelvis, cycles)
    return block, {"thorax_deg": thorax, "pelvis_deg": pelvis, "relative_phase_deg": phase}
