"""A reconstruction as a rig and its motion in the lab frame: what the Blender scene is built from.

The rig is the body model's 24 SMPL joints (rest joints = ``J_regressor @ v_shaped``, the shaped
template as mesh) followed by the vertebra bones S1 ... C7 chained under the pelvis, with the
torso's skinning weights moved from spine1..3 to the vertebrae (:func:`.spine.dynamic.spine_skin_weights`).
The reconstruction is in the camera frame; ``world_from_camera`` takes it to the lab frame (y up),
where the rig lives.

The npz holds the vertebrae's per-frame centres and frames, not the rest chain: the chain's rest
offsets are recovered as each vertebra's offset from its parent in the parent's frame, averaged
over the clip (exact for the spine stage's rigid chain), and its rotations are the vertebra frames
(identity = the body's axes, as for SMPL's joints).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from .body.model import BodyModel
from .kinematics import global_rotmats
from .metrics.angles import lab_rotation, lumbar_angles, pelvic_angles
from .reconstruction import Reconstruction
from .rig import Rig, RigMotion
from .skeleton import NUM_SMPL_JOINTS, SMPL_JOINT_NAMES
from .spine.dynamic import shaped_rest, spine_skin_weights

# Animated custom properties on the armature (degrees), in the order of the angle triples.
LUMBAR_CURVES = ("lumbar_flexion_deg", "lumbar_bending_deg", "lumbar_rotation_deg")
PELVIC_CURVES = ("pelvic_tilt_deg", "pelvic_obliquity_deg", "pelvic_rotation_deg")
HEEL_STRIKE_MARKERS = {"left": "HS L", "right": "HS R"}
# Lab (y up) -> Blender's Z-up world: (x, y, z) -> (x, -z, y). Blender and AMASS exports use it.
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def to_lab(reconstruction: Reconstruction, points_m: np.ndarray) -> np.ndarray:
    """(..., 3) camera-frame points -> lab frame (y up)."""
    transform = reconstruction.world_from_camera
    return points_m @ transform[:3, :3].T + transform[:3, 3]


def smpl_global_rotations(reconstruction: Reconstruction) -> np.ndarray:
    """(T, 24, 3, 3) local SMPL rotations with the root's in the lab frame."""
    rotvec = np.concatenate(
        [reconstruction.global_orient[:, None], reconstruction.body_pose.reshape(-1, NUM_SMPL_JOINTS - 1, 3)],
        axis=1,
    ).astype(np.float64)
    local = Rotation.from_rotvec(rotvec.reshape(-1, 3)).as_matrix().reshape(*rotvec.shape, 3)
    local[:, 0] = reconstruction.world_from_camera[:3, :3] @ local[:, 0]
    return local


def vertebra_chain(
    reconstruction: Reconstruction, pelvis_rest_m: np.ndarray, pelvis_global: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Rest heads (L, 3) and parent-relative rotations (T, L, 3, 3) of the vertebra chain (lab frame).

    Args:
        pelvis_rest_m: (3,) the rig's rest pelvis joint.
        pelvis_global: (T, 3, 3) the pelvis's lab-frame rotation per frame.
    """
    rotation = reconstruction.world_from_camera[:3, :3]
    global_rot = rotation @ reconstruction.vertebra_rotations  # (T, L, 3, 3), identity = body axes
    positions = to_lab(reconstruction, reconstruction.vertebrae_m)
    pelvis = to_lab(reconstruction, reconstruction.joints_m[:, 0])
    parent_rot = np.concatenate([pelvis_global[:, None], global_rot[:, :-1]], axis=1)
    parent_pos = np.concatenate([pelvis[:, None], positions[:, :-1]], axis=1)
    offsets = np.einsum("tlji,tlj->tli", parent_rot, positions - parent_pos).mean(axis=0)
    rest_heads = pelvis_rest_m + np.cumsum(offsets, axis=0)
    local = np.swapaxes(parent_rot, -1, -2) @ global_rot
    return rest_heads, local


def subject_rig_and_motion(reconstruction: Reconstruction, body: BodyModel) -> tuple[Rig, RigMotion]:
    """The rig (SMPL joints + vertebra chain, shaped mesh) and its lab-frame motion, angle curves
    (degrees, :data:`LUMBAR_CURVES`, :data:`PELVIC_CURVES`) and heel-strike markers."""
    vertices, joints = shaped_rest(body, np.asarray(reconstruction.betas, dtype=np.float64))
    smpl_local = smpl_global_rotations(reconstruction)
    smpl_global = global_rotmats(smpl_local, body.parents)
    vertebra_heads, vertebra_local = vertebra_chain(reconstruction, joints[0], smpl_global[:, 0])
    vertebrae = len(reconstruction.vertebra_names)
    parents = np.concatenate([body.parents, [0], np.arange(NUM_SMPL_JOINTS, NUM_SMPL_JOINTS + vertebrae - 1)])
    rig = Rig(
        bone_names=(*SMPL_JOINT_NAMES, *reconstruction.vertebra_names),
        parents=parents,
        rest_heads_m=np.concatenate([joints, vertebra_heads]),
        rest_vertices_m=vertices,
        faces=np.asarray(body.faces),
        skin_weights=spine_skin_weights(body.weights, vertices, vertebra_heads),
    )
    motion = RigMotion(
        local_rotations=np.concatenate([smpl_local, vertebra_local], axis=1),
        root_position_m=to_lab(reconstruction, reconstruction.joints_m[:, 0]),
        fps=float(reconstruction.fps),
        curves_deg=angle_curves_deg(reconstruction),
        markers={
            HEEL_STRIKE_MARKERS["left"]: [int(f) for f in reconstruction.heel_strikes_left],
            HEEL_STRIKE_MARKERS["right"]: [int(f) for f in reconstruction.heel_strikes_right],
        },
    )
    return rig, motion


def angle_curves_deg(reconstruction: Reconstruction) -> dict[str, np.ndarray]:
    """Per-frame lumbar (L1 relative to S1) and pelvic (S1 relative to the lab) angles, degrees."""
    names = reconstruction.vertebra_names
    anatomical = reconstruction.world_from_camera[:3, :3] @ reconstruction.vertebra_rotations
    lumbar = np.degrees(lumbar_angles(anatomical, names.index("S1"), names.index("L1")))
    s1 = anatomical[:, names.index("S1")]
    try:
        lab = lab_rotation(to_lab(reconstruction, reconstruction.joints_m[:, 0]))
    except ValueError:
        # Walking in place: the direction of progression is S1's mean anterior axis.
        lab = lab_rotation(np.stack([np.zeros(3), s1[:, :, 2].mean(axis=0)]))
    pelvic = np.degrees(pelvic_angles(s1, lab))
    return {
        **{name: lumbar[:, k] for k, name in enumerate(LUMBAR_CURVES)},
        **{name: pelvic[:, k] for k, name in enumerate(PELVIC_CURVES)},
    }
