"""The dynamic spine: the subject's vertebra chain moved by the smoothed SMPL trunk motion (DESIGN.md 5).

SMPL's trunk bends at three joints (spine1, spine2, spine3; on the open body at about L4, L1 and
T9), which share the trunk's bend as walking shares it (:mod:`.trunk_split`, applied to the
smoothed motion before the spine is built). Each of their parent-relative rotations is spread
over the intervertebral joints nearest to it (those whose heads lie between the midpoints to the
neighbouring SMPL spine joints; spine1 takes the levels from L5-S1 up, spine3 those up to C7-T1),
per plane in proportion to White & Panjabi's segmental ranges (:mod:`.segments`): Cardan angles
(flexion, lateral bending, axial rotation) scaled by the share and recomposed. The C7-T1 joint
takes no share (the cervicothoracic motion belongs to SMPL's neck). S1 moves rigidly with the
pelvis. So the chain's total bend follows SMPL's trunk, lumbar levels take most of the flexion,
thoracic levels most of the axial rotation.

Every vertebra bone's rest frame is the body's axes (x left, y up, z anterior), as SMPL's joints,
so the vertebra rotations are also section 6's anatomical frames (identity in the static posture).
The rig is SMPL's 24 joints followed by the vertebrae (:data:`..skeleton.VERTEBRA_NAMES`), S1's
parent the pelvis and each vertebra's parent the one below; the torso's skinning weights move from
spine1..3 to the vertebra bones (:func:`spine_skin_weights`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.spatial.transform import Rotation

from ..body.model import BodyModel
from ..metrics.angles import cardan_angles, rotation_from_cardan
from ..skeleton import NUM_SMPL_JOINTS, SMPL_JOINT_INDEX, VERTEBRA_NAMES
from .segments import LUMBAR_LEVEL_ROM, THORACIC_LEVEL_ROM, chain_world
from .trunk_split import TRUNK_JOINTS

if TYPE_CHECKING:
    from .morphology import SpineMorphology

# (18, 3) ranges of the joints L5-S1 .. C7-T1 (flexion-extension, lateral bending, axial rotation)
LEVEL_ROM_DEG = np.vstack([LUMBAR_LEVEL_ROM, THORACIC_LEVEL_ROM, np.zeros((1, 3))])
FRAME_CHUNK = 1000  # frames moved at a time (see dynamic_spine)


@dataclass(frozen=True)
class DynamicSpine:
    """The vertebra chain over T frames (L vertebrae, S1 first), camera frame (OpenCV axes, metres).

    - ``names`` (L,); ``centres_m`` (T, L, 3): vertebral body centres.
    - ``rotations`` (T, L, 3, 3): anatomical frames (columns: the body's x left, y up, z anterior
      in the static posture, moved by each vertebra).
    - ``local_rotations`` (T, L, 3, 3), derived: each vertebra's rotation relative to its rig
      parent (the pelvis for S1, the vertebra below otherwise), about its rest head.
    - ``rest_heads_m`` (L, 3): rest vertebra centres in the shaped body's rest frame (SMPL axes,
      the same frame as the body's rest joints); ``parents`` (L,): rig index of each parent among
      the 24 + L bones.
    """

    names: tuple[str, ...]
    centres_m: np.ndarray
    rotations: np.ndarray
    rest_heads_m: np.ndarray
    parents: np.ndarray

    @property
    def local_rotations(self) -> np.ndarray:
        # computed when asked (the rig's tests): kept, it would be a long clip's largest array
        local = np.empty_like(self.rotations)
        local[:, 0] = np.eye(3)  # S1 moves rigidly with the pelvis
        local[:, 1:] = np.swapaxes(self.rotations[:, :-1], -1, -2) @ self.rotations[:, 1:]
        return local


def shaped_rest(body: BodyModel, betas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rest (zero-pose) vertices (V, 3) and joints (24, 3) of the shaped body, float64 metres."""
    betas = np.asarray(betas, dtype=np.float64)
    vertices = body.v_template_m.astype(np.float64) + body.shapedirs[..., : len(betas)] @ betas
    return vertices, body.J_regressor.astype(np.float64) @ vertices


def level_groups(rest_joints_m: np.ndarray, rest_heads_m: np.ndarray) -> np.ndarray:
    """(18,) index into :data:`.trunk_split.SPINE_JOINTS` of the SMPL joint each intervertebral joint shares.

    Joint k (the head of vertebra k) belongs to the SMPL spine joint nearest in height: the
    boundaries are the midpoints between spine1, spine2 and spine3.
    """
    heights = rest_joints_m[TRUNK_JOINTS, 1]
    bounds = 0.5 * (heights[:-1] + heights[1:])  # spine1|spine2, spine2|spine3
    return np.searchsorted(bounds, rest_heads_m[1:, 1])


def level_weights_by_group(groups: np.ndarray) -> np.ndarray:
    """(18, 3) share of each intervertebral joint in its group's rotation, per plane (sums to 1 per group)."""
    weights = np.zeros_like(LEVEL_ROM_DEG)
    for group in np.unique(groups):
        rows = groups == group
        total = LEVEL_ROM_DEG[rows].sum(axis=0)
        weights[rows] = LEVEL_ROM_DEG[rows] / np.where(total > 0, total, 1.0)
    return weights


def intervertebral_rotations(
    local_rotmats: np.ndarray, groups: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """(T, 18, 3, 3) rotations Q_k of the joints L5-S1 .. C7-T1 from SMPL's (T, 24, 3, 3) local rotations."""
    spine = local_rotmats[:, TRUNK_JOINTS]  # (T, 3, 3, 3)
    angles = cardan_angles(spine)  # (T, 3 joints, 3 planes)
    return rotation_from_cardan(angles[:, groups] * weights)


def dynamic_spine(
    body: BodyModel,
    betas: np.ndarray,
    local_rotvec: np.ndarray,
    transl: np.ndarray,
    morphology: SpineMorphology,
    dtype: type = np.float64,
) -> DynamicSpine:
    """The vertebra chain following the body's trunk on every frame (computed in float64, its
    per-frame arrays stored as ``dtype``).

    Args:
        body: the body model the motion belongs to; betas (B,): its shape.
        local_rotvec: (T, 24, 3) axis-angle (radians), parent-relative, index 0 the global
            orientation in the camera frame (smoothed).
        transl: (T, 3) SMPL translation (metres, camera frame).
        morphology: the subject's static spine (:func:`.morphology.spine_morphology`); its
            rest chain lies in the shaped body's rest frame.
    """
    frames = local_rotvec.shape[0]
    _, rest_joints = shaped_rest(body, betas)
    rest_heads = np.asarray(morphology.rest.origins_m, dtype=np.float64)
    groups = level_groups(rest_joints, rest_heads)
    weights = level_weights_by_group(groups)
    count = len(rest_heads)
    rotations = np.empty((frames, count, 3, 3), dtype=dtype)
    centres = np.empty((frames, count, 3), dtype=dtype)
    # every frame on its own: chunks bound the temporaries (about 13 KB a frame) of long clips
    for start in range(0, frames, FRAME_CHUNK):
        chunk = slice(start, start + FRAME_CHUNK)
        rotvec = np.asarray(local_rotvec[chunk], dtype=np.float64)
        local = Rotation.from_rotvec(rotvec.reshape(-1, 3)).as_matrix().reshape(-1, NUM_SMPL_JOINTS, 3, 3)
        joints = intervertebral_rotations(local, groups, weights)
        pelvis_position = np.asarray(transl[chunk], dtype=np.float64) + rest_joints[0]
        rotations[chunk], centres[chunk] = chain_world(
            local[:, 0],
            pelvis_position,
            joints,
            rest_heads,
            rest_joints[0],  # the root's is global
        )
    parents = np.array([SMPL_JOINT_INDEX["pelvis"], *range(NUM_SMPL_JOINTS, NUM_SMPL_JOINTS + count - 1)])
    return DynamicSpine(VERTEBRA_NAMES[:count], centres, rotations, rest_heads, parents)


def spine_skin_weights(
    weights: np.ndarray, rest_vertices_m: np.ndarray, rest_heads_m: np.ndarray
) -> np.ndarray:
    """(V, 24 + L) skinning weights: the torso's spine1..3 weights moved to the vertebra bones.

    A vertex's spine weight goes to the vertebra bones by its rest height along the chain: bone k
    (head k to head k+1) owns the middle of its segment and shares linearly with its neighbours
    toward the joints, so the trunk bends smoothly at every level; the pelvis's, neck's, collars'
    and limbs' weights stay as they are. Rows still sum to 1.

    Args:
        weights: (V, 24) the body's skinning weights; rest_vertices_m: (V, 3) shaped rest mesh;
        rest_heads_m: (L, 3) rest vertebra heads (same frame), increasing in height.
    """
    spine_weight = weights[:, TRUNK_JOINTS].sum(axis=1)
    count = len(rest_heads_m)
    heights = rest_heads_m[:, 1]
    segment_middles = 0.5 * (heights[:-1] + heights[1:])  # bones 0 .. L-2; bone L-1 (C7) above
    middles = np.append(segment_middles, heights[-1] + (heights[-1] - segment_middles[-1]))
    position = np.interp(rest_vertices_m[:, 1], middles, np.arange(count, dtype=np.float64))
    lower = np.floor(position).astype(int)
    upper = np.minimum(lower + 1, count - 1)
    fraction = position - lower
    vertebra = np.zeros((len(weights), count))
    rows = np.arange(len(weights))
    np.add.at(vertebra, (rows, lower), spine_weight * (1.0 - fraction))
    np.add.at(vertebra, (rows, upper), spine_weight * fraction)
    smpl = np.array(weights, dtype=np.float64)
    smpl[:, TRUNK_JOINTS] = 0.0
    return np.concatenate([smpl, vertebra], axis=1)
