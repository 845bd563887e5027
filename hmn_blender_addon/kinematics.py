"""Forward kinematics of the SMPL 24-joint tree in numpy, batched over frames.

Conventions (SMPL's): rotations are axis-angle, parent-relative, index 0 is the global root
orientation; the rest pose is a T-pose (arms horizontal, y up, subject facing +z, x toward the
subject's left). Posed joint j = posed parent + G_parent @ (rest_j - rest_parent), where G is the
accumulated (global) rotation, so the root stays at ``rest_joints_m[0]`` unless a pelvis position
is given.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from .skeleton import SMPL_PARENTS

FRAME_CHUNK = 1000  # frames posed at a time (see forward_kinematics)

# Approximate joint centres of SMPL's neutral template (metres, T-pose), rounded to millimetres and
# made left/right symmetric. Good for rest-pose alignment directions and for tests; real work uses
# the body model's own joints (J_regressor @ v_shaped).
SMPL_LIKE_REST_JOINTS_M: np.ndarray = np.array(
    [
        [0.000, -0.223, 0.028],  # pelvis
        [0.068, -0.314, 0.022],  # left_hip
        [-0.068, -0.314, 0.022],  # right_hip
        [0.000, -0.103, 0.012],  # spine1
        [0.105, -0.695, 0.021],  # left_knee
        [-0.105, -0.695, 0.021],  # right_knee
        [0.000, 0.032, 0.030],  # spine2
        [0.088, -1.097, -0.020],  # left_ankle
        [-0.088, -1.097, -0.020],  # right_ankle
        [0.000, 0.088, 0.033],  # spine3
        [0.120, -1.154, 0.097],  # left_foot
        [-0.120, -1.154, 0.097],  # right_foot
        [0.000, 0.288, 0.008],  # neck
        [0.077, 0.196, 0.020],  # left_collar
        [-0.077, 0.196, 0.020],  # right_collar
        [0.000, 0.355, 0.058],  # head
        [0.199, 0.237, -0.015],  # left_shoulder
        [-0.199, 0.237, -0.015],  # right_shoulder
        [0.456, 0.224, -0.037],  # left_elbow
        [-0.456, 0.224, -0.037],  # right_elbow
        [0.721, 0.234, -0.037],  # left_wrist
        [-0.721, 0.234, -0.037],  # right_wrist
        [0.806, 0.227, -0.054],  # left_hand
        [-0.806, 0.227, -0.054],  # right_hand
    ],
    dtype=np.float32,
)


def global_rotmats(local_rotmats: np.ndarray, parents: np.ndarray = SMPL_PARENTS) -> np.ndarray:
    """(T, J, 3, 3) parent-relative rotation matrices -> (T, J, 3, 3) global ones.

    Parents must precede their children (true for SMPL's order).
    """
    out = np.empty_like(local_rotmats)
    out[:, 0] = local_rotmats[:, 0]
    for j in range(1, local_rotmats.shape[1]):
        out[:, j] = out[:, parents[j]] @ local_rotmats[:, j]
    return out


def forward_kinematics(
    local_rotvec_rad: np.ndarray,
    rest_joints_m: np.ndarray,
    root_transl_m: np.ndarray | None = None,
    parents: np.ndarray = SMPL_PARENTS,
) -> np.ndarray:
    """Posed joint positions.

    local_rotvec_rad: (T, J, 3) axis-angle, parent-relative (index 0 = root orientation).
    rest_joints_m: (J, 3) rest-pose (T-pose) joint centres.
    root_transl_m: optional (T, 3) pelvis positions; None keeps the pelvis at ``rest_joints_m[0]``.
    Returns (T, J, 3) metres, float32.
    """
    num_frames, num_joints = local_rotvec_rad.shape[:2]
    rest = np.asarray(rest_joints_m, dtype=np.float64)
    joints = np.empty((num_frames, num_joints, 3), dtype=np.float32)
    # a chunk of frames at a time: the float64 rotation matrices take about 4 KB a frame
    for start in range(0, num_frames, FRAME_CHUNK):
        chunk = slice(start, start + FRAME_CHUNK)
        rotvec = local_rotvec_rad[chunk].reshape(-1, 3).astype(np.float64)
        local = Rotation.from_rotvec(rotvec).as_matrix().reshape(-1, num_joints, 3, 3)
        rot = global_rotmats(local, parents)
        posed = np.empty((len(rot), num_joints, 3))
        posed[:, 0] = rest[0] if root_transl_m is None else root_transl_m[chunk]
        for j in range(1, num_joints):
            p = parents[j]
            posed[:, j] = posed[:, p] + rot[:, p] @ (rest[j] - rest[p])
        joints[chunk] = posed
    return joints
