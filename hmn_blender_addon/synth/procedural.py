"""A procedural walk in SMPL convention, used only where the CMU motion capture folder is absent.

Sagittal joint curves over the gait phase (0 at the left heel strike) with textbook shapes and
amplitudes of normal walking (hip flexion +25 deg at heel strike to -10 deg at push-off; knee
flexion 15 deg in loading response and 60 deg in swing; ankle plantarflexion 15 deg at toe-off),
the right side half a stride later, arms hanging 75 deg below the T-pose and swinging 15 deg
against the same-side leg with elbows bent 20 deg. Stride 1.1 s and 1.4 m (1.27 m/s) with 2 cm of
lateral sway. It has none of a real walk's variability: the real walks are always preferred.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from ..mocap import MocapClip
from ..skeleton import NUM_SMPL_JOINTS, SMPL_JOINT_INDEX

STRIDE_S = 1.1
STRIDE_M = 1.4
SWAY_M = 0.02
PELVIS_HEIGHT_M = 0.93
DURATION_S = 6.0


def _bump(phase_rad: np.ndarray, centre: float, width: float = 0.08) -> np.ndarray:
    """A periodic Gaussian bump over the cycle (centre and width as cycle fractions)."""
    distance = (phase_rad / (2 * np.pi) - centre + 0.5) % 1.0 - 0.5
    return np.exp(-0.5 * (distance / width) ** 2)


def _leg_angles_deg(phase_rad: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hip flexion, knee flexion and ankle plantarflexion (deg) of a leg whose heel strikes at phase 0."""
    hip = 7.5 + 17.5 * np.cos(phase_rad)
    knee = 3.0 + 12.0 * _bump(phase_rad, 0.15) + 57.0 * _bump(phase_rad, 0.72)
    ankle = 15.0 * _bump(phase_rad, 0.62, 0.05) - 8.0 * _bump(phase_rad, 0.45)
    return hip, knee, ankle


def procedural_clip(fps: float) -> MocapClip:
    """:data:`DURATION_S` of the procedural walk at ``fps``, along +z."""
    times = np.arange(round(DURATION_S * fps)) / fps
    phase = 2 * np.pi * times / STRIDE_S
    rotvec = np.zeros((len(times), NUM_SMPL_JOINTS, 3))
    x_axis, y_axis = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    for side, offset, sign in (("left", 0.0, 1.0), ("right", np.pi, -1.0)):
        hip, knee, ankle = _leg_angles_deg(phase - offset)
        # about x (the subject's left): negative swings the thigh forward, positive bends the knee
        rotvec[:, SMPL_JOINT_INDEX[f"{side}_hip"]] = -np.radians(hip)[:, None] * x_axis
        rotvec[:, SMPL_JOINT_INDEX[f"{side}_knee"]] = np.radians(knee)[:, None] * x_axis
        rotvec[:, SMPL_JOINT_INDEX[f"{side}_ankle"]] = np.radians(ankle)[:, None] * x_axis
        swing = np.radians(-15.0 * np.cos(phase - offset))  # arm back while the same leg is forward
        lowered = Rotation.from_euler("z", -sign * 75.0, degrees=True)
        shoulder = Rotation.from_rotvec(swing[:, None] * x_axis) * lowered
        rotvec[:, SMPL_JOINT_INDEX[f"{side}_shoulder"]] = shoulder.as_rotvec()
        rotvec[:, SMPL_JOINT_INDEX[f"{side}_elbow"]] = -sign * np.radians(20.0) * y_axis
    transl = np.stack(
        [SWAY_M * np.sin(phase), np.full_like(times, PELVIS_HEIGHT_M), STRIDE_M * times / STRIDE_S], axis=1
    )
    return MocapClip(
        name="procedural",
        subject="procedural",
        description="procedural walk",
        fps=fps,
        local_rotvec_rad=rotvec.astype(np.float32),
        root_transl_m=transl.astype(np.float32),
    )
