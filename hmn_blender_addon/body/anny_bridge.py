"""The bridge between Anny's 104-bone rig and SMPL's 24 joints.

Anny (``anny.Anny()``, rig "anny", pose_parameterization "local-ref") stands in its own frame:
z up, the subject facing -y, x toward the subject's left, metres; its rest pose is an A-pose
(arms about 50 degrees below horizontal, elbows slightly bent). SMPL's frame is y up, facing +z,
x toward the subject's left, and its zero pose is a T-pose. This module maps one onto the other:

- Each SMPL joint *drives* one or more Anny bones (:data:`SMPL_DRIVE_BONES`); the joint centre is
  the mean of their heads. Every other Anny bone (twist bones such as ``upperleg02``, the lower
  lumbar ``spine05``/``spine04``, ``neck02``/``neck03``, metacarpals, finger phalanges beyond the
  first, eyes) keeps its rest relation to its parent, i.e. moves rigidly with the nearest driven
  ancestor: its local-ref delta is the identity.
- Rest-pose difference: the T-pose of this project is Anny's reference pose with the shoulder,
  elbow, wrist and hand segments turned (by the smallest rotation) to point straight out along
  +x / -x; legs, spine, neck, head and collars keep Anny's reference orientation. With ``T_j`` that
  world rotation (identity except the arm joints), an SMPL pose with world rotations ``G_j`` (relative
  to the T-pose) puts Anny's segment at ``G_j T_j``, so the local-ref delta of joint j of parent p
  is ``D_j = T_p^T R_j T_j`` with ``R_j`` the SMPL local rotation expressed in Anny's axes.
- The ``T_j`` are measured once on the default phenotype; for other phenotypes the arms of the
  T-pose are within a few degrees of horizontal, the same for Anny and the open body built from it.

In local-ref, Anny's root is placed at its delta's translation, so with no translation the root
joint (pelvis) sits at the origin for every phenotype; SMPL's ``transl`` maps to it directly.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from ..paths import configure_third_party_caches
from ..skeleton import NUM_SMPL_JOINTS, SMPL_JOINT_NAMES, SMPL_PARENTS

if TYPE_CHECKING:
    import anny

# smpl_vector = ANNY_TO_SMPL @ anny_vector: Anny's (x left, y back, z up) -> SMPL's (x left, y up, z front).
ANNY_TO_SMPL: np.ndarray = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def _sided(names: tuple[str, ...], side: str) -> tuple[str, ...]:
    return tuple(f"{name}.{side}" for name in names)


def _drive_table() -> dict[str, tuple[str, ...]]:
    table: dict[str, tuple[str, ...]] = {
        "pelvis": ("root",),
        # SMPL's spine1/2/3 sit about 0.2, 0.33 and 0.39 m above the hips of a 1.7 m body; Anny's
        # spine03 (~L4), spine02 (~L1) and spine01 (~T8) are the nearest bones of its 1.6 m default.
        "spine1": ("spine03",),
        "spine2": ("spine02",),
        "spine3": ("spine01",),
        "neck": ("neck01",),
        "head": ("head",),
    }
    for side, smpl_side in (("L", "left"), ("R", "right")):
        table |= {
            f"{smpl_side}_hip": _sided(("upperleg01",), side),
            f"{smpl_side}_knee": _sided(("lowerleg01",), side),
            f"{smpl_side}_ankle": _sided(("foot",), side),
            # SMPL's foot joint is the ball of the foot: all first toe phalanges bend together.
            f"{smpl_side}_foot": _sided(tuple(f"toe{k}-1" for k in range(1, 6)), side),
            f"{smpl_side}_collar": _sided(("clavicle",), side),
            f"{smpl_side}_shoulder": _sided(("upperarm01",), side),
            f"{smpl_side}_elbow": _sided(("lowerarm01",), side),
            f"{smpl_side}_wrist": _sided(("wrist",), side),
            # SMPL's hand joint is at the knuckles: the four fingers' first phalanges (the thumb
            # and the metacarpals move with the wrist).
            f"{smpl_side}_hand": _sided(tuple(f"finger{k}-1" for k in range(2, 6)), side),
        }
    return {name: table[name] for name in SMPL_JOINT_NAMES}


# SMPL joint name -> the Anny bones it drives (SMPL joint order); the joint centre is their heads' mean.
SMPL_DRIVE_BONES: dict[str, tuple[str, ...]] = _drive_table()

# The arm segments turned from Anny's A-pose to the T-pose: joint -> (child joint giving the
# segment direction, target direction in Anny's frame). The hand's direction is its fingers'.
_TPOSE_SEGMENTS: dict[str, tuple[str, tuple[float, float, float]]] = {
    f"{side}_{joint}": (child, (sign, 0.0, 0.0))
    for side, sign in (("left", 1.0), ("right", -1.0))
    for joint, child in (("shoulder", f"{side}_elbow"), ("elbow", f"{side}_wrist"), ("wrist", f"{side}_hand"))
}


def bone_joint_index(bone_labels: list[str], bone_parents: list[int]) -> np.ndarray:
    """(B,) the SMPL joint each Anny bone moves with: its own if driven, else its driven ancestor's."""
    driven = {bone: j for j, name in enumerate(SMPL_JOINT_NAMES) for bone in SMPL_DRIVE_BONES[name]}
    out = np.empty(len(bone_labels), dtype=np.int64)
    for b, label in enumerate(bone_labels):  # parents precede children in Anny's bone order
        out[b] = driven[label] if label in driven else out[bone_parents[b]]
    return out


def joint_centres_from_bone_heads(bone_heads: torch.Tensor, bone_labels: list[str]) -> torch.Tensor:
    """(..., B, 3) Anny bone heads -> (..., 24, 3) SMPL joint centres (same frame and units)."""
    index = {label: i for i, label in enumerate(bone_labels)}
    return torch.stack(
        [
            bone_heads[..., [index[b] for b in SMPL_DRIVE_BONES[name]], :].mean(-2)
            for name in SMPL_JOINT_NAMES
        ],
        dim=-2,
    )


@functools.lru_cache(maxsize=1)
def anny_model() -> anny.Anny:
    """Anny's full-body model (rig "anny", local-ref poses, dense LBS), built once per process.

    Dense LBS rather than NVIDIA Warp's: same result, and Warp would compile kernels into the
    home folder. The first build ever fills anny's cache (about 790 MB, minutes) in the project's
    cache folder; later builds take about a second.
    """
    cache = configure_third_party_caches()
    import anny
    import anny.paths

    anny.paths.set_anny_cache_path(cache)  # in case anny was imported before the variable was set
    model = anny.Anny(skinning_method="lbs", pose_parameterization="local-ref")
    model.requires_grad_(False)
    return model


def _minimal_rotation(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(3, 3) the smallest rotation taking direction ``source`` onto direction ``target``."""
    return Rotation.align_vectors(target[None], source[None])[0].as_matrix()


@functools.lru_cache(maxsize=1)
def tpose_rotations() -> np.ndarray:
    """(24, 3, 3) world rotations T_j (Anny's frame) from Anny's reference pose to the T-pose, per segment."""
    model = anny_model()
    with torch.no_grad():
        heads = model()["bone_poses"][0, :, :3, 3]
    centres = joint_centres_from_bone_heads(heads, model.bone_labels).double().numpy()
    index = {name: j for j, name in enumerate(SMPL_JOINT_NAMES)}
    rotations = np.tile(np.eye(3), (NUM_SMPL_JOINTS, 1, 1))
    for joint, (child, target) in _TPOSE_SEGMENTS.items():
        direction = centres[index[child]] - centres[index[joint]]
        rotations[index[joint]] = _minimal_rotation(direction, np.asarray(target))
    for joint, side, sign in (("left_hand", "L", 1.0), ("right_hand", "R", -1.0)):
        # The hand points along its fingers: from their first to their second phalanges' heads.
        knuckles, middles = (
            [model.bone_labels.index(f"finger{k}-{n}.{side}") for k in range(2, 6)] for n in (1, 2)
        )
        direction = (heads[middles].mean(0) - heads[knuckles].mean(0)).double().numpy()
        rotations[index[joint]] = _minimal_rotation(direction, np.array([sign, 0.0, 0.0]))
    return rotations


def _as_tensor(values: np.ndarray | torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(values, dtype=torch.float64)


def anny_pose_from_smpl(
    local_rotvec_rad: np.ndarray | torch.Tensor,
    transl_m: np.ndarray | torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Anny ``pose_parameters`` (local-ref) that put Anny in the pose of an SMPL body.

    Args:
        local_rotvec_rad: (T, 24, 3) SMPL axis-angle rotations (parent-relative, index 0 the root
            orientation, SMPL's frame and T-pose convention).
        transl_m: optional (T, 3) root translation in SMPL's frame (SMPL's ``transl`` of a body
            whose pelvis joint is at the origin).
    Returns:
        {bone label: (T, 4, 4) float32 delta} for the driven bones; Anny treats the others as
        identity. Feed to ``anny_model()(pose_parameters=..., pose_parameterization="local-ref")``;
        the result is in Anny's frame (see :data:`ANNY_TO_SMPL`).
    """
    import roma

    rotvec = _as_tensor(local_rotvec_rad)
    frames = rotvec.shape[0]
    axes = torch.as_tensor(ANNY_TO_SMPL)
    local = axes.T @ roma.rotvec_to_rotmat(rotvec) @ axes  # SMPL local rotations in Anny's axes
    tpose = torch.as_tensor(tpose_rotations())
    parent_tpose = torch.cat([torch.eye(3)[None].double(), tpose[SMPL_PARENTS[1:]]])
    deltas = torch.zeros(frames, NUM_SMPL_JOINTS, 4, 4, dtype=torch.float64)
    deltas[..., :3, :3] = parent_tpose.transpose(-1, -2) @ local @ tpose
    deltas[..., 3, 3] = 1.0
    if transl_m is not None:
        deltas[:, 0, :3, 3] = _as_tensor(transl_m) @ axes  # = axes.T @ transl per frame
    deltas = deltas.float()
    return {bone: deltas[:, j] for j, name in enumerate(SMPL_JOINT_NAMES) for bone in SMPL_DRIVE_BONES[name]}


def anny_posed(
    phenotypes: torch.Tensor,
    local_rotvec_rad: np.ndarray | torch.Tensor,
    transl_m: np.ndarray | torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Anny's posed mesh and SMPL joint centres, in SMPL's frame.

    Args:
        phenotypes: (N, 6) or (1, 6) values in [0, 1] in ``anny_model().phenotype_labels`` order
            (gender, age, muscle, weight, height, proportions).
        local_rotvec_rad, transl_m: (N, 24, 3) and (N, 3) as in :func:`anny_pose_from_smpl`.
    Returns:
        vertices_m (N, V, 3) and joints_m (N, 24, 3) float32.
    """
    model = anny_model()
    with torch.no_grad():
        out = model(
            pose_parameters=anny_pose_from_smpl(local_rotvec_rad, transl_m),
            phenotype_kwargs=phenotypes.to(model.dtype),
            pose_parameterization="local-ref",
        )
    axes = torch.as_tensor(ANNY_TO_SMPL, dtype=model.dtype)
    joints = joint_centres_from_bone_heads(out["bone_poses"][..., :3, 3], model.bone_labels)
    return out["vertices"] @ axes.T, joints @ axes.T
