"""Skeleton definitions every stage agrees on: SMPL's 24 joints, the vertebra chain, MediaPipe's 33 landmarks.

Body frame (SMPL's): y up, x toward the subject's left, z toward the subject's front.
Sources: SMPL joint order and parents, MediaPipe Pose landmark order (../shared/REFERENCES.md section 6).
"""

from __future__ import annotations

import numpy as np

SMPL_JOINT_NAMES: tuple[str, ...] = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hand",
    "right_hand",
)
SMPL_PARENTS: np.ndarray = np.array(
    [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21], dtype=np.int64
)
NUM_SMPL_JOINTS = 24
SMPL_JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(SMPL_JOINT_NAMES)}

# The embedded spine, caudal to cranial (DESIGN.md section 5).
VERTEBRA_NAMES: tuple[str, ...] = (
    "S1",
    "L5",
    "L4",
    "L3",
    "L2",
    "L1",
    "T12",
    "T11",
    "T10",
    "T9",
    "T8",
    "T7",
    "T6",
    "T5",
    "T4",
    "T3",
    "T2",
    "T1",
    "C7",
)

MEDIAPIPE_LANDMARK_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye_inner",
    "left_eye",
    "left_eye_outer",
    "right_eye_inner",
    "right_eye",
    "right_eye_outer",
    "left_ear",
    "right_ear",
    "mouth_left",
    "mouth_right",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_pinky",
    "right_pinky",
    "left_index",
    "right_index",
    "left_thumb",
    "right_thumb",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_heel",
    "right_heel",
    "left_foot_index",
    "right_foot_index",
)


def kinematic_adjacency(parents: np.ndarray = SMPL_PARENTS) -> np.ndarray:
    """Symmetric (J, J) 0/1 adjacency of a kinematic tree given each joint's parent (-1 = root)."""
    num_joints = len(parents)
    adjacency = np.zeros((num_joints, num_joints), dtype=np.float32)
    children = np.nonzero(parents >= 0)[0]
    adjacency[children, parents[children]] = 1.0
    adjacency[parents[children], children] = 1.0
    return adjacency
