"""The trunk's bend shared among SMPL's three spine joints as walking shares it.

The landmarks show the thorax (shoulders) relative to the pelvis (hips), nothing between them, so
the fit sees the trunk's whole bend, the product of spine1, spine2 and spine3, but not how the
three share it: the pose prior decides that frame by frame, and its choice, which moves the L1
level's frame, is noise in the lumbar figures. On the bench's 35 symmetric screening clips the
fitted trunk's whole bend (T1 on S1) ordered a walk's ROM scales better than its lumbar part (L1
on S1): side view sagittal 15 of 15 pairs against 13; oblique transverse 14 against 12; oblique
frontal 13 against 14.

So the motion is shared as the CMU walks share it (:func:`fit_trunk_split`, stored with the pose
prior): per plane, each joint's Cardan angle regressed on the trunk's, about each walk's mean
(the expected share of a joint given the whole bend, which is what the landmarks show). Each
joint keeps its own mean posture over the clip; the trunk keeps its rotation on every frame. On
the bench's 50 clips the lumbar ROM rankings went from 87 / 93 / 80% (sagittal, frontal,
transverse) to 100 / 87 / 93% and the side view's lumbar sagittal ROM error from 1.8 to 1.1 deg
(README, Known limits).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.spatial.transform import Rotation

from ..metrics.angles import cardan_angles, rotation_from_cardan
from ..skeleton import SMPL_JOINT_INDEX

SPINE_JOINTS: tuple[str, ...] = ("spine1", "spine2", "spine3")
TRUNK_JOINTS = [SMPL_JOINT_INDEX[name] for name in SPINE_JOINTS]  # their indices among SMPL's 24


def _trunk_angles(spine_rotvec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, 3, 3) axis-angle spine1..3 -> their (T, 3, 3) Cardan angles (joint, plane) and the
    trunk's (T, 3, 3) rotation, their product."""
    frames = len(spine_rotvec)
    rotations = Rotation.from_rotvec(np.asarray(spine_rotvec, np.float64).reshape(-1, 3))
    matrices = rotations.as_matrix().reshape(frames, 3, 3, 3)
    return cardan_angles(matrices), matrices[:, 0] @ matrices[:, 1] @ matrices[:, 2]


def fit_trunk_split(walks: Sequence[np.ndarray]) -> np.ndarray:
    """(3, 3) share of spine1, spine2, spine3 (rows) in the trunk's flexion, lateral bending and
    axial rotation (columns); each column sums to 1.

    Args:
        walks: per walk, (T_i, 3, 3) axis-angle parent-relative rotations of spine1, spine2, spine3.
    """
    joint_parts, trunk_parts = [], []
    for spine_rotvec in walks:
        joint_angles, trunk = _trunk_angles(spine_rotvec)
        trunk_angles = cardan_angles(trunk)
        joint_parts.append(joint_angles - joint_angles.mean(axis=0))
        trunk_parts.append(trunk_angles - trunk_angles.mean(axis=0))
    joints, whole = np.concatenate(joint_parts), np.concatenate(trunk_parts)  # (N, 3, 3), (N, 3)
    slopes = np.einsum("njp,np->jp", joints, whole) / np.einsum("np,np->p", whole, whole)
    return slopes / slopes.sum(axis=0)  # the three angles sum to the trunk's up to second order


def split_trunk(spine_rotvec: np.ndarray, trunk_split: np.ndarray) -> np.ndarray:
    """(T, 3, 3) axis-angle spine1..3 with the trunk's motion shared as ``trunk_split`` (3, 3) says.

    Spine1 and spine2 take their mean Cardan angles over the frames plus their share of the
    trunk's angles' deviation from its mean; spine3 takes what the trunk's rotation leaves, so
    the thorax moves exactly as before.
    """
    joint_angles, trunk = _trunk_angles(spine_rotvec)
    trunk_angles = cardan_angles(trunk)
    deviation = trunk_angles - trunk_angles.mean(axis=0)  # (T, 3)
    lower = rotation_from_cardan(joint_angles[:, :2].mean(axis=0) + deviation[:, None] * trunk_split[:2])
    upper = np.swapaxes(lower[:, 0] @ lower[:, 1], -1, -2) @ trunk
    shared = np.concatenate([lower, upper[:, None]], axis=1)
    return Rotation.from_matrix(shared.reshape(-1, 3, 3)).as_rotvec().reshape(spine_rotvec.shape)
