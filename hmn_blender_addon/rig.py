"""The subject's rig and motion as plain arrays: what the Blender side turns into an armature.

A rig is SMPL's 24 joints followed by the vertebra bones (S1 ... C7, a chain under the pelvis),
all parent-relative rotations about their rest heads, skinning one mesh. Everything here is in
the lab frame (y up, metres); the conversion to Blender's Z-up happens once, in
:mod:`hmn_blender_addon.blender.scene`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .kinematics import global_rotmats


@dataclass
class Rig:
    """Bones and skinned mesh in the rest pose (B bones, V vertices, F faces).

    - ``bone_names`` (B,), ``parents`` (B,) int: parent bone index, -1 for the root; parents
      precede children.
    - ``rest_heads_m`` (B, 3): bone heads (joint centres) in the rest pose, body frame, metres.
    - ``rest_vertices_m`` (V, 3), ``faces`` (F, 3) int: the shaped body mesh in the rest pose.
    - ``skin_weights`` (V, B): linear-blend-skinning weights, rows summing to 1.
    """

    bone_names: tuple[str, ...]
    parents: np.ndarray
    rest_heads_m: np.ndarray
    rest_vertices_m: np.ndarray
    faces: np.ndarray
    skin_weights: np.ndarray


@dataclass
class RigMotion:
    """T frames of a rig's motion.

    - ``local_rotations`` (T, B, 3, 3): parent-relative rotations about each bone's rest head
      (the root's is its orientation in the lab frame).
    - ``root_position_m`` (T, 3): the root bone's head in the lab frame.
    - ``fps``: frames per second of the keyframes.
    - ``curves_deg``: named per-frame values (e.g. lumbar angles, degrees) shown as animated
      custom properties; each (T,).
    - ``markers``: named frame indices (e.g. heel strikes) shown as timeline markers.
    """

    local_rotations: np.ndarray
    root_position_m: np.ndarray
    fps: float
    curves_deg: dict[str, np.ndarray]
    markers: dict[str, list[int]]


def posed_heads(rig: Rig, motion: RigMotion) -> np.ndarray:
    """(T, B, 3) bone heads in the lab frame: forward kinematics of ``motion`` on ``rig``."""
    rotations = global_rotmats(motion.local_rotations, rig.parents)
    rest = rig.rest_heads_m.astype(np.float64)
    heads = np.empty((*rotations.shape[:2], 3))
    heads[:, 0] = motion.root_position_m
    for bone in range(1, len(rig.parents)):
        parent = rig.parents[bone]
        heads[:, bone] = heads[:, parent] + rotations[:, parent] @ (rest[bone] - rest[parent])
    return heads


def skinned_vertices(rig: Rig, motion: RigMotion) -> np.ndarray:
    """(T, V, 3) linear-blend-skinned mesh in the lab frame (what Blender's armature modifier gives)."""
    rotations = global_rotmats(motion.local_rotations, rig.parents)  # (T, B, 3, 3)
    heads = posed_heads(rig, motion)  # (T, B, 3)
    # Bone transform: x -> R_b (x - rest_head_b) + posed_head_b
    offsets = heads - np.einsum("tbij,bj->tbi", rotations, rig.rest_heads_m)
    blended_rotation = np.einsum("vb,tbij->tvij", rig.skin_weights, rotations)
    blended_offset = np.einsum("vb,tbi->tvi", rig.skin_weights, offsets)
    return np.einsum("tvij,vj->tvi", blended_rotation, rig.rest_vertices_m) + blended_offset
