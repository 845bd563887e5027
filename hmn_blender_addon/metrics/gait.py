"""Spatiotemporal gait markers from heel strikes and the body's path on the ground (DESIGN.md 6).

Persistent low back pain goes with slower walking and shorter strides (REFERENCES.md section 1,
Smith et al. 2022), so these sit beside the spine's ranges. All distances are horizontal, in a
lab frame with y up (the fitted ground's normal) and z the direction of progression:

- walking speed: the pelvis's travel along the progression from the first to the last heel
  strike (of either foot), over that time;
- stride: consecutive heel strikes of one foot; its length is the horizontal distance its ankle
  joint centre moved between them, its time the frames between them over the frame rate;
- step: a heel strike and the other foot's heel strike before it; its time is the frames between
  them, its length the distance along the progression from the trailing ankle to the striking
  ankle at the strike (the ankle joint centre stands in for the heel, as in :mod:`.cycles`);
- cadence: 60 / mean step time (steps per minute);
- step time and step length symmetry: Robinson's index on the left and right means (REFERENCES.md
  section 3), 100 |L - R| / (0.5 (L + R)), 0 = symmetric.

A monocular reconstruction's metric scale comes from the fitted body (its size in pixels against
its shape's size in metres): ``scale`` multiplies every distance, e.g. the subject's measured height
over the fitted body's stature, and the block records where the scale came from.
"""

from __future__ import annotations

import itertools

import numpy as np

from ..skeleton import SMPL_JOINT_INDEX
from .angles import Y_UP, lab_rotation

SCALE_SOURCES = ("fitted_shape", "subject_height", "truth")


def robinson_si_pct(left: float, right: float) -> float:
    """Robinson's symmetry index of two positive quantities, percent (0 = symmetric)."""
    total = left + right
    return 0.0 if total <= 0 else 100.0 * abs(left - right) / (0.5 * total)


def _summary(values: list[float]) -> dict:
    array = np.asarray(values, dtype=np.float64)
    if len(array) == 0:
        return {"mean": None, "sd": None, "per_cycle": []}
    return {
        "mean": float(array.mean()),
        "sd": float(array.std(ddof=1)) if len(array) > 1 else 0.0,
        "per_cycle": [float(v) for v in array],
    }


def steps(strikes: dict[str, list[int]]) -> list[tuple[str, int, int]]:
    """[(side, previous other-foot strike, this strike)] for every strike preceded by the other foot's."""
    events = sorted((frame, side) for side, frames in strikes.items() for frame in frames)
    return [
        (side, previous_frame, frame)
        for (previous_frame, previous_side), (frame, side) in itertools.pairwise(events)
        if previous_side != side
    ]


def gait_markers(
    joints_lab_m: np.ndarray,
    strikes: dict[str, list[int]],
    fps: float,
    scale: float = 1.0,
    scale_source: str = "fitted_shape",
    up: np.ndarray = Y_UP,
) -> dict:
    """The ``metrics.gait`` block (report.json, section 10) of a walk.

    Args:
        joints_lab_m: (T, 24, 3) SMPL joints in a lab frame with ``up``; metres at the fit's scale.
        strikes: {"left": [...], "right": [...]} heel-strike frames (at least two in all).
        fps: frames per second; scale: multiplies every distance; scale_source: one of
            :data:`SCALE_SOURCES`, recorded in the block.
    """
    if scale_source not in SCALE_SOURCES:
        raise ValueError(f"scale_source must be one of {SCALE_SOURCES}, not {scale_source!r}")

    def track(name: str) -> np.ndarray:  # one joint's (T, 3) path, scaled (not all 24: long clips)
        return np.asarray(joints_lab_m[:, SMPL_JOINT_INDEX[name]], dtype=np.float64) * scale

    up = np.asarray(up, dtype=np.float64) / np.linalg.norm(up)
    pelvis = track("pelvis")
    forward = lab_rotation(pelvis, up=up)[:, 2]
    ankles = {side: track(f"{side}_ankle") for side in ("left", "right")}
    events = sorted(frame for frames in strikes.values() for frame in frames)
    if len(events) < 2 or events[-1] == events[0]:
        raise ValueError(f"gait markers need two heel strikes at different frames, got {strikes}")

    first, last = events[0], events[-1]
    speed = float((pelvis[last] - pelvis[first]) @ forward) / ((last - first) / fps)
    stride_lengths, stride_times = [], []
    for side, frames in strikes.items():
        for a, b in itertools.pairwise(frames):
            travel = ankles[side][b] - ankles[side][a]
            stride_lengths.append(float(np.linalg.norm(travel - (travel @ up) * up)))
            stride_times.append((b - a) / fps)
    step_times = {"left": [], "right": []}
    step_lengths = {"left": [], "right": []}
    for side, previous, frame in steps(strikes):
        other = "right" if side == "left" else "left"
        step_times[side].append((frame - previous) / fps)
        step_lengths[side].append(float((ankles[side][frame] - ankles[other][frame]) @ forward))
    all_step_times = step_times["left"] + step_times["right"]
    means = {
        name: {side: float(np.mean(v)) if v else None for side, v in values.items()}
        for name, values in (("step_time_s", step_times), ("step_length_m", step_lengths))
    }
    symmetry = {
        key: robinson_si_pct(means[name]["left"], means[name]["right"])
        if None not in means[name].values()
        else None
        for key, name in (("step_time", "step_time_s"), ("step_length", "step_length_m"))
    }
    return {
        "walking_speed_m_s": speed,
        "stride_length_m": _summary(stride_lengths),
        "stride_time_s": _summary(stride_times),
        "cadence_steps_per_min": 60.0 / float(np.mean(all_step_times)) if all_step_times else None,
        "step_time_s": means["step_time_s"],
        "step_length_m": means["step_length_m"],
        "symmetry_index_pct": symmetry,
        "scale": {"source": scale_source, "factor": float(scale)},
    }
