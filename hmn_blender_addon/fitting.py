"""Keypoints -> one SMPL body per frame: SMPLify-style optimisation in torch, all frames at once.

Unknowns: one shape ``betas`` (B,) for the clip; per frame the global orientation (continuous 6D
form, camera frame), 23 joint rotations (axis-angle) and the translation (camera frame, metres).
Energy, each term a mean over frames (and points), weights in :class:`FitSettings`:

- 2D reprojection of the model points matching MediaPipe's landmarks (:data:`CORRESPONDENCES`),
  visibility-weighted, residuals divided by the person's height in pixels and passed through
  Geman-McClure (robust to swaps and misses; SMPLify's term, Bogo et al. 2016);
- MediaPipe's world landmarks: the same points relative to the hip centre, in metres;
  MediaPipe's guess of the hip that the pelvis hides in a side view counts only in height
  (:func:`hidden_hip_factors`);
- the walking pose prior (Mahalanobis, :mod:`.pose_prior`) and its data-driven joint limits;
- the pelvis's tilt about its mean over the clip and its turn about its heading over a second,
  Gaussians with the spreads of the CMU walks'; in a side view, its mean facing about the
  direction of travel and its obliquity held level (:func:`pelvis_deviations`);
- a shape prior ``|betas|^2``; with the subject's height given, the shape is held at that stature
  (betas projected after each step onto the plane where the rest body's top-to-sole span, linear
  in betas, equals it): otherwise the scale is the prior's average body, since a taller subject
  farther away projects alike;
- temporal velocity and acceleration of the joints (frames without the subject are carried by
  these alone);
- foot-ground contact: after a first pass, a plane is fitted to each frame's lowest foot point;
  then the lowest foot point of every frame lies on it and no foot point goes below it;
- silhouette: sampled surface points, projected, must fall inside the person mask (squared
  distance to the mask, in person heights).

Kinematics never evaluate the full mesh: the joints come from forward kinematics of
``J_regressor @ v_shaped`` and the few surface points by linear blend skinning of those vertices
only. Both are linear in the global rotations' columns (:func:`point_matrix`), so one matrix
product poses every frame's joints, surface and model points (that matrix is itself linear in the
shape and the landmark offsets: one more product builds it), and an iteration costs a few
milliseconds for hundreds of frames, most of it in the count of tensor operations; the root's 6D
form, Rodrigues and the chain of global rotations are differentiated by hand (:class:`_Rotation6D`,
:class:`_GlobalRotations`) in a fraction of autograd's operations. Three stages
of Adam steps, the rate cosine-annealed to a tenth in each: torso (a fifth of ``iterations``;
orientation and translation of the rigid body, whose points are posed once), body
(``iterations``) and contact (a third, after the ground plane is fitted). Camera: pinhole,
principal point at the image centre; focal length from ``--focal-px``, else the clip's metadata,
else a phone-like default (26 mm equivalent), and the result says which.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from scipy.spatial.transform import Rotation

from .body.model import BodyModel
from .errors import HMNError
from .heap import release_free_memory
from .keypoints import MASK_SHAPE, Keypoints
from .pose_prior import PosePrior, load_pose_prior
from .progress import Progress
from .skeleton import NUM_SMPL_JOINTS, SMPL_JOINT_INDEX

# MediaPipe landmark -> model point, weight. A model point is a blend of SMPL joints (named as in
# skeleton.SMPL_JOINT_NAMES) and surface landmarks (body.landmarks names) with these coefficients.
CORRESPONDENCES: tuple[tuple[int, dict[str, float], float], ...] = (
    (0, {"nose": 1.0}, 0.3),
    (2, {"leye": 1.0}, 0.3),
    (5, {"reye": 1.0}, 0.3),
    (7, {"lear": 1.0}, 0.3),
    (8, {"rear": 1.0}, 0.3),
    # MediaPipe's shoulder sits between the joint centre and the top of the shoulder (acromion).
    (11, {"left_shoulder": 0.5, "left_acromion": 0.5}, 1.0),
    (12, {"right_shoulder": 0.5, "right_acromion": 0.5}, 1.0),
    (13, {"left_elbow": 1.0}, 1.0),
    (14, {"right_elbow": 1.0}, 1.0),
    (15, {"left_wrist": 1.0}, 1.0),
    (16, {"right_wrist": 1.0}, 1.0),
    # Detector hips sit higher and wider than the hip joint centres (SMPLify-X ignores them);
    # a low weight keeps their left/right and depth information. They also follow the thighs: on
    # 6 rendered side clips outside the bench, MediaPipe's world hip line (left - right) less the
    # true one grew with the true thighs' difference (knee - hip, left less right) along the walk
    # with slopes 0.07 to 0.13 (mean 0.096; on the bench's oblique clips 0.10 to 0.16), so the
    # model hip moves as a point a tenth of the way to the knee (standing at the hip joint in the
    # rest pose, :data:`OFFSET_CARRIERS`). Without that the fit read the thighs' swing as the
    # pelvis turning: on the bench's 26 side clips pelvis 5.01 -> 4.91 deg, its turn's range 2.0
    # -> 1.9 times the truth's; obliquely the lumbar transverse ROM error 4.1 -> 3.3 deg.
    (23, {"left_hip": 0.9, "left_knee": 0.1}, 0.5),
    (24, {"right_hip": 0.9, "right_knee": 0.1}, 0.5),
    (25, {"left_knee": 1.0}, 1.0),
    (26, {"right_knee": 1.0}, 1.0),
    (27, {"left_ankle": 1.0}, 1.0),
    (28, {"right_ankle": 1.0}, 1.0),
    (29, {"LHeel": 1.0}, 0.8),
    (30, {"RHeel": 1.0}, 0.8),
    (31, {"LBigToe": 1.0}, 0.8),
    (32, {"RBigToe": 1.0}, 0.8),
)
# Landmarks whose offset (below) rides on another joint than their blend's first: the hips'
# constant difference from the model point is the pelvis's, not the thigh's. Their blend says how
# the point moves, not where it sits: in the rest pose it stands at its first joint.
OFFSET_CARRIERS: dict[int, str] = {23: "pelvis", 24: "pelvis"}
FOOT_POINTS = ("LHeel", "RHeel", "LBigToe", "RBigToe")
# A window is seen from the side when the median of |depth| / length of MediaPipe's world hip line
# (left - right hip) is at least this: the hip line within 26 deg of the camera's axis. The rendered
# side views give 0.93-0.97, the oblique (45 deg) ones 0.72-0.82, the front ones 0.07-0.10.
SIDE_VIEW_HIP_DEPTH_RATIO = 0.9
PHONE_FOCAL_35MM = 26.0
NUM_SILHOUETTE_POINTS = 64
# The pelvis's reference directions are taken again every this many optimiser steps: they move
# slowly, and taking them costs about as much as the terms that use them.
REFERENCE_EVERY = 10
OFFSET_SCALE_M = 0.03  # typical landmark offset: the offsets' prior is (offset / 3 cm)^2


@dataclass(frozen=True)
class FitSettings:
    """Weights and schedule of the optimisation (defaults tuned on the rendered clips)."""

    focal_px: float | None = None
    iterations: int = 350
    learning_rate: float = 0.03
    robust_sigma: float = 0.05  # Geman-McClure scale, in person heights
    w_2d: float = 30.0
    # MediaPipe's world hips swing +-25 deg about the vertical in a side view where the truth's turn
    # +-5 deg: 0.3 against 1.0 on 17 rendered clips: MPJPE 66 -> 63 mm, pelvis 8.7 -> 8.1 deg.
    w_3d: float = 0.3
    w_pose: float = 1e-5
    # A Gaussian on the pelvis's tilt about its mean over the clip (window), weighted as the pose
    # prior weighs the joints, with the CMU walks' spread about their clips' means: 1.3 deg (median
    # of 37 clips; 0.9 to 4.5, turns and stops included). Without it the fitted pelvis pitched with
    # every step twice as much as the truth's, the hips' prior pulling the extreme flexion and
    # extension toward its mean. On the 26 rendered side clips with the prior levelled in tilt only
    # (pelvic tilt range error, lumbar sagittal ROM error): none 3.0, 1.5; SD 2.6 deg 2.2, 1.3;
    # 1.8 deg 1.5, 1.3; 1.5 deg 1.0, 1.5; 1.3 deg 0.7, 1.6; 0.9 deg 0.9, 2.2.
    pelvic_tilt_sd_deg: float = 1.3
    # The same for the pelvis's turn about the vertical, about its heading averaged over
    # pelvic_turn_window_s: SD 4.4 deg, the median of the 32 levelled CMU walks' RMS (1.7 to 6.2).
    # Without it the fitted pelvis turned through 17 to 27 deg a cycle in the side views where the
    # truth turns 8 to 11.
    pelvic_turn_sd_deg: float = 4.4
    pelvic_turn_window_s: float = 1.0
    # In a window seen from the side, a Gaussian on the pelvis's mean facing about the direction of
    # travel (:func:`pelvis_deviations`), weighted as the tilt's: a straight walk faces where it
    # goes, and there the walk crosses the image, so the fit sees its direction well (1.0 deg RMS
    # off the truth's on 10 rendered side clips, where the fitted facing was 2.6 deg RMS off).
    # Obliquely the travel lies partly along the camera's axis, where depth is least certain: a
    # heading term there took the oblique views' transverse ROM error from 3.3 to 12.6 deg.
    heading_sd_deg: float = 1.0
    heading_min_travel_m: float = 0.5
    # In a window seen from the side, a Gaussian on the pelvis's obliquity about its mean, narrow
    # enough to hold it level: there only the hips' heights show it and the far hip is hidden. The
    # fitted obliquity's correlation with the truth's over a clip was -0.08 on 6 rendered side
    # clips (0.28 given the true hips' pixels) at about the truth's range, so its swings were all
    # error; a side view's report does not measure frontal figures. On 10 side clips (pelvis
    # orientation, pelvic tilt range, lumbar sagittal ROM errors): without it 5.36, 0.40, 1.30 deg;
    # SD 1.0 5.19, 0.48, 1.25; 0.5 5.15, 0.50, 1.25.
    side_obliquity_sd_deg: float = 0.5
    w_limits: float = 1.0
    w_shape: float = 1e-4
    # Walking feet accelerate hard at heel strike: stronger temporal terms bias the limbs.
    w_velocity: float = 0.002
    w_acceleration: float = 0.02
    w_contact: float = 0.5
    w_silhouette: float = 0.05
    w_offset: float = 0.002
    subject_height_m: float | None = None  # the stature the shape is held at, when known
    # Long clips are fitted in windows of this many frames, overlapping by window_overlap.
    window_frames: int = 300
    window_overlap: int = 30
    pose_prior: PosePrior | None = field(default=None, repr=False)


@dataclass
class BodyFit:
    """The fitted bodies of T frames (camera frame: OpenCV's x right, y down, z forward).

    betas (B,); global_orient (T, 3), body_pose (T, 69): axis-angle, radians; transl (T, 3) m;
    joints_m (T, 24, 3); camera_K (3, 3); focal_source: "option", "metadata" or "default";
    ground_normal (3,) unit, pointing up, and ground_offset_m: the plane {p : n.p = offset};
    reprojection_px (T,): mean 2D error of the visible correspondences (NaN without subject);
    timing_s: seconds spent.
    """

    betas: np.ndarray
    global_orient: np.ndarray
    body_pose: np.ndarray
    transl: np.ndarray
    joints_m: np.ndarray
    camera_K: np.ndarray
    focal_source: str
    ground_normal: np.ndarray
    ground_offset_m: float
    reprojection_px: np.ndarray
    timing_s: float = 0.0


def camera_matrix(width: int, height: int, focal_px: float) -> np.ndarray:
    """(3, 3) pinhole intrinsics with the principal point at the image centre."""
    return np.array([[focal_px, 0.0, width / 2.0], [0.0, focal_px, height / 2.0], [0.0, 0.0, 1.0]])


def default_focal_px(width: int, height: int) -> float:
    """A phone's main camera: 26 mm (35 mm equivalent) across the longer side's 36 mm."""
    return PHONE_FOCAL_35MM / 36.0 * max(width, height)


def choose_focal(
    width: int, height: int, option_px: float | None, metadata_px: float | None
) -> tuple[float, str]:
    """(focal length in pixels, where it came from)."""
    if option_px is not None:
        if not option_px > 0:
            raise HMNError("--focal-px", f"must be positive, got {option_px}")
        return float(option_px), "option"
    if metadata_px is not None and metadata_px > 0:
        return float(metadata_px), "metadata"
    return default_focal_px(width, height), "default"


# ---------------------------------------------------------------- kinematics (torch, batched)


class _Rotation6D(torch.autograd.Function):
    """(..., 6) -> (..., 3, 3) Gram-Schmidt on two columns, with the coordinates first inside and a
    hand-written backward (autograd's chain through the normalisations and the cross product takes
    several times the operations, each on 3-long rows)."""

    @staticmethod
    def forward(ctx, six: torch.Tensor) -> torch.Tensor:
        columns = six.reshape(-1, 6).T  # (6, N)
        first, second = columns[:3], columns[3:]
        first_norm = torch.linalg.vector_norm(first, dim=0).clamp(min=1e-12)
        x = first / first_norm
        upright = second - (x * second).sum(0) * x
        upright_norm = torch.linalg.vector_norm(upright, dim=0).clamp(min=1e-12)
        y = upright / upright_norm
        z = torch.linalg.cross(x, y, dim=0)
        ctx.save_for_backward(second, x, y, first_norm, upright_norm)
        return torch.stack([x, y, z], 1).permute(2, 0, 1).reshape(*six.shape[:-1], 3, 3)

    @staticmethod
    def backward(ctx, grad_matrix: torch.Tensor) -> torch.Tensor:
        second, x, y, first_norm, upright_norm = ctx.saved_tensors
        grad = grad_matrix.reshape(-1, 3, 3).permute(1, 2, 0)  # [i, column, N]
        grad_x, grad_y, grad_z = grad[:, 0], grad[:, 1], grad[:, 2]
        # z = x cross y; y = u / |u| with u = b - (x.b) x; x = a / |a|
        grad_x = grad_x + torch.linalg.cross(y, grad_z, dim=0)
        grad_y = grad_y + torch.linalg.cross(grad_z, x, dim=0)
        grad_upright = (grad_y - (y * grad_y).sum(0) * y) / upright_norm
        along_x = (x * grad_upright).sum(0)
        grad_second = grad_upright - along_x * x
        grad_x = grad_x - along_x * second - (x * second).sum(0) * grad_upright
        grad_first = (grad_x - (x * grad_x).sum(0) * x) / first_norm
        return torch.cat([grad_first, grad_second]).T.reshape(*grad_matrix.shape[:-2], 6)


def rotation_6d_to_matrix(six: torch.Tensor) -> torch.Tensor:
    """(..., 6) -> (..., 3, 3): Gram-Schmidt on two columns (Zhou et al. 2019)."""
    return _Rotation6D.apply(six)


# Rodrigues with the frames last: a rotation's 9 entries as rows over N rotations, so that every
# operation runs along long contiguous rows (the (..., 3, 3) layout broadcasts over 3-long rows).
OUTER_ROWS, OUTER_COLUMNS = [0, 0, 0, 1, 1, 1, 2, 2, 2], [0, 1, 2, 0, 1, 2, 0, 1, 2]
TRANSPOSED_ENTRIES = [0, 3, 6, 1, 4, 7, 2, 5, 8]  # entry 3a + b -> 3b + a
# rotvec @ SKEW_BASIS = the cross-product matrix [[0, -z, y], [z, 0, -x], [-y, x, 0]], flattened
SKEW_BASIS = torch.zeros(3, 9)
SKEW_BASIS[[2, 1, 2, 0, 1, 0], [1, 2, 3, 5, 6, 7]] = torch.tensor([-1.0, 1.0, 1.0, -1.0, -1.0, 1.0])
# rows: SKEW_BASIS reads w = (G21 - G12, G02 - G20, G10 - G01), then the trace
GRADIENT_READOUT = torch.cat([SKEW_BASIS, torch.eye(3).reshape(1, 9)])


def rodrigues_factors(rotvec: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """rotvec (3, N) -> t^2 (+ 1e-12, safe at zero), cos t, sin(t)/t, (1 - cos t)/t^2, each (N,)."""
    square = (rotvec * rotvec).sum(0) + 1e-12
    angle = torch.sqrt(square)
    cos = torch.cos(angle)
    return square, cos, torch.sin(angle) / angle, (1 - cos) / square


def transposed_rotation_rows(rotvec: torch.Tensor, factors: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """(9, N) the entries of R^T, row 3k + a = R[a, k], for rotvec (3, N) and its
    :func:`rodrigues_factors`: R^T = cos t I - sin(t)/t [r]x + (1 - cos t)/t^2 r r^T."""
    _, cos, sinc, versine = factors
    skew = SKEW_BASIS.T.to(rotvec.dtype) @ rotvec  # (9, N) [r]x
    outer = rotvec[OUTER_ROWS] * rotvec[OUTER_COLUMNS]
    return torch.eye(3, dtype=rotvec.dtype).reshape(9, 1) * cos + versine * outer - sinc * skew


@dataclass
class _Kinematics:
    """The body's pieces the fit needs, as tensors (P model points = joints + surface points)."""

    joint_template: torch.Tensor  # (24, 3)  J_regressor @ v_template
    joint_shapedirs: torch.Tensor  # (24, 3, B)
    vertex_template: torch.Tensor  # (S, 3)   surface points used by the fit
    vertex_shapedirs: torch.Tensor  # (S, 3, B)
    vertex_weights: torch.Tensor  # (S, 24) skinning weights
    parents: list[int]
    # pointer jumping over the tree: per step, each joint's current "parent" (24 = the identity
    # appended after the joints, its own parent); after the steps every joint holds its global rotation
    jump_parents: list[torch.Tensor]
    bone_parent: torch.Tensor  # (23, 24) 1 where joint i is the parent of bone b (joint b + 1)
    ancestors: torch.Tensor  # (24, 23) 1 where bone b (joint b + 1 and its parent) lies on joint j's path
    descendants: torch.Tensor  # (24, 24) 1 where joint d lies in joint j's subtree (j included)
    vertex_index: dict[str, int]  # name -> row of the surface points
    # the rest body's stature (m) = stature_template + stature_shapedirs @ betas, from the vertices
    # highest and lowest at the mean shape
    stature_template: float
    stature_shapedirs: torch.Tensor  # (B,)


def _pointer_jumps(parents: list[int]) -> list[torch.Tensor]:
    """The (J + 1,) parent tables of pointer jumping (Hillis & Steele 1986) over a tree of J joints.

    Step k composes each joint's rotation with that of its 2^k-th ancestor, so that
    ceil(log2(depth + 1)) steps (4 for SMPL's depth of 8) give every global rotation; index J
    stands for the identity above the root (its own parent, so a step keeps it)."""
    count = len(parents)
    current = np.array([count if p < 0 else p for p in parents] + [count])
    steps = []
    while (current[:count] < count).any():
        steps.append(torch.as_tensor(current))
        current = current[current]
    return steps


def _kinematics(body: BodyModel, vertex_ids: dict[str, int]) -> _Kinematics:
    ids = np.array(list(vertex_ids.values()), dtype=np.int64)
    parents = [int(p) for p in body.parents]
    ancestors = np.zeros((NUM_SMPL_JOINTS, NUM_SMPL_JOINTS - 1), dtype=np.float32)
    for joint in range(1, NUM_SMPL_JOINTS):
        link = joint
        while link != 0:
            ancestors[joint, link - 1] = 1.0
            link = parents[link]
    bone_parent = np.zeros((NUM_SMPL_JOINTS - 1, NUM_SMPL_JOINTS), dtype=np.float32)
    bone_parent[np.arange(NUM_SMPL_JOINTS - 1), parents[1:]] = 1.0
    as_tensor = lambda array: torch.as_tensor(np.ascontiguousarray(array), dtype=torch.float32)  # noqa: E731
    # point_matrix moves every surface point with the posed pelvis: exact when each point's
    # skinning weights sum to 1, as blend skinning's do
    if np.abs(body.weights[ids].sum(axis=1) - 1.0).max() > 1e-4:
        raise ValueError("the body's skinning weights do not sum to 1 per vertex")
    top, sole = int(np.argmax(body.v_template_m[:, 1])), int(np.argmin(body.v_template_m[:, 1]))
    return _Kinematics(
        joint_template=as_tensor(body.J_regressor @ body.v_template_m),
        joint_shapedirs=as_tensor(np.einsum("jv,vkb->jkb", body.J_regressor, body.shapedirs)),
        vertex_template=as_tensor(body.v_template_m[ids]),
        vertex_shapedirs=as_tensor(body.shapedirs[ids]),
        vertex_weights=as_tensor(body.weights[ids]),
        parents=parents,
        jump_parents=_pointer_jumps(parents),
        bone_parent=as_tensor(bone_parent),
        ancestors=as_tensor(ancestors),
        descendants=as_tensor(np.concatenate([np.ones((1, NUM_SMPL_JOINTS)), ancestors.T])),
        vertex_index={name: row for row, name in enumerate(vertex_ids)},
        stature_template=float(body.v_template_m[top, 1] - body.v_template_m[sole, 1]),
        stature_shapedirs=as_tensor(body.shapedirs[top, 1] - body.shapedirs[sole, 1]),
    )


def hold_stature(betas: torch.Tensor, kin: _Kinematics, stature_m: float) -> None:
    """Move ``betas`` (B,) in place, least, onto the plane of shapes with the rest stature ``stature_m``."""
    direction = kin.stature_shapedirs
    with torch.no_grad():
        excess = kin.stature_template + direction @ betas - stature_m
        betas -= direction * excess / (direction @ direction)


def correspondence_matrix(kin: _Kinematics) -> np.ndarray:
    """(C, 24 + S): each correspondence's model point as a blend of joints and surface points."""
    matrix = np.zeros((len(CORRESPONDENCES), NUM_SMPL_JOINTS + len(kin.vertex_index)), dtype=np.float32)
    for row, (_, blend, _) in enumerate(CORRESPONDENCES):
        for name, coefficient in blend.items():
            column = (
                SMPL_JOINT_INDEX[name]
                if name in SMPL_JOINT_INDEX
                else NUM_SMPL_JOINTS + kin.vertex_index[name]
            )
            matrix[row, column] = coefficient
    return matrix


def standing_shifts() -> np.ndarray:
    """(C, 24) the matrix that takes the rest joints (24, 3) to the fixed offsets (C, 3) that put
    each :data:`OFFSET_CARRIERS` landmark's model point at its first joint in the rest pose (zero
    rows for the others)."""
    shifts = np.zeros((len(CORRESPONDENCES), NUM_SMPL_JOINTS), dtype=np.float32)
    for row, (mp_index, blend, _) in enumerate(CORRESPONDENCES):
        if mp_index in OFFSET_CARRIERS:
            shifts[row, SMPL_JOINT_INDEX[next(iter(blend))]] += 1.0
            for name, coefficient in blend.items():
                shifts[row, SMPL_JOINT_INDEX[name]] -= coefficient
    return shifts


def carrier_joints(kin: _Kinematics) -> np.ndarray:
    """(C,) the joint whose motion carries each correspondence's landmark offset: the one
    :data:`OFFSET_CARRIERS` names, else its first joint, or the joint that skins its first surface
    point most."""
    carriers = []
    for mp_index, blend, _ in CORRESPONDENCES:
        joints = [SMPL_JOINT_INDEX[name] for name in blend if name in SMPL_JOINT_INDEX]
        if mp_index in OFFSET_CARRIERS:
            carriers.append(SMPL_JOINT_INDEX[OFFSET_CARRIERS[mp_index]])
        elif joints:
            carriers.append(joints[0])
        else:
            row = kin.vertex_index[next(iter(blend))]
            carriers.append(int(torch.argmax(kin.vertex_weights[row])))
    return np.array(carriers)


def axis_angle_gradient(
    rotvec: torch.Tensor, factors: tuple[torch.Tensor, ...], grad_rows: torch.Tensor
) -> torch.Tensor:
    """(3, N) the gradient by rotvec (3, N) through Rodrigues, R = c I + b [r]x + e r r^T (c = cos t,
    b = sin(t)/t, e = (1 - c)/t^2: :func:`rodrigues_factors`), of a loss whose gradient by R is
    ``grad_rows`` (9, N), row 3a + b = dL/dR[a, b]:

    dL/dr = r (-b tr G + (c - b)/t^2 r.w + (b - 2e)/t^2 r^T G r) + b w + e (G + G^T) r, where
    w = (G21 - G12, G02 - G20, G10 - G01) is what <G, [r]x> = r.w reads. About twenty operations
    where autograd's chain through the formula takes some forty in a worse layout.
    """
    square, cos, sinc, versine = factors
    readout = GRADIENT_READOUT.to(grad_rows.dtype) @ grad_rows
    skew_part, trace = readout[:3], readout[3]  # w, tr G
    symmetric = grad_rows + grad_rows[TRANSPOSED_ENTRIES]  # G + G^T
    symmetric_r = (symmetric.reshape(3, 3, -1) * rotvec).sum(1)  # (G + G^T) r
    along = (
        (cos - sinc) / square * (rotvec * skew_part).sum(0)
        + (sinc - 2 * versine) / square * 0.5 * (rotvec * symmetric_r).sum(0)
        - sinc * trace
    )
    return rotvec * along + sinc * skew_part + versine * symmetric_r


def _matrix_products(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """(J, 3, 3, T) the products left[j] right[j] of (J, 3, 3, T) stacks of 3 x 3 matrices (entry
    [j, a, b, t] is matrix (j, t)'s [a, b]), entry by entry with the frames last: for 3 x 3 matrices
    a few times faster than batched matrix products."""
    return (left[:, :, :, None] * right[:, None]).sum(2)


class _GlobalRotations(torch.autograd.Function):
    """root (T, 3, 3), body axis-angles (T, 23, 3) -> the global rotations' columns (72, 3, T), with
    a hand-written backward: an iteration's time goes to the number of operations, and autograd's
    chain through Rodrigues and the pointer jumping takes several times more than this one."""

    @staticmethod
    def forward(ctx, root: torch.Tensor, body_rotvec: torch.Tensor, kin: _Kinematics) -> torch.Tensor:
        frames, count = len(root), NUM_SMPL_JOINTS
        rotvec = body_rotvec.permute(2, 1, 0).reshape(3, -1)  # (3, 23 T), joint-major
        factors = rodrigues_factors(rotvec)
        body = transposed_rotation_rows(rotvec, factors).reshape(3, 3, count - 1, frames).permute(2, 0, 1, 3)
        identity = torch.eye(3, dtype=root.dtype)[None, :, :, None].expand(1, 3, 3, frames)
        # planes[j, k, a] (T,) = R_j[a, k] = row k of R_j^T, the products on the transposes:
        # (R_parent R_joint)^T = R_joint^T R_parent^T
        planes = torch.cat([root.permute(2, 1, 0)[None], body, identity])
        for parents in kin.jump_parents:
            planes = _matrix_products(planes, planes[parents])
        ctx.save_for_backward(rotvec, *factors, planes)
        ctx.kin = kin
        return planes[:count].reshape(3 * count, 3, frames)

    @staticmethod
    def backward(ctx, grad_columns: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        rotvec, *factors, planes = ctx.saved_tensors
        kin = ctx.kin
        count, frames = NUM_SMPL_JOINTS, planes.shape[-1]
        globals_t = planes[:count]  # [j, k, a] = G_j[a, k]
        grad = grad_columns.reshape(count, 3, 3, frames)  # [j, k, a] = dL/dG_j[a, k]
        # G_d = G_j (G_j^T G_d) for d in j's subtree, so the whole gradient by G_j is A_j G_j with
        # A_j = sum over the subtree of dL/dG_d G_d^T; then G_j = G_parent R_j gives
        # dL/dR_j = G_parent^T A_j G_j.
        outer = _matrix_products(grad.transpose(1, 2), globals_t)  # [d, a, b] = (dL/dG_d G_d^T)[a, b]
        subtree = (kin.descendants.to(outer.dtype) @ outer.reshape(count, -1)).reshape(count, 3, 3, frames)
        total = _matrix_products(subtree, globals_t.transpose(1, 2))  # [j, a, c] = (A_j G_j)
        parent = planes[kin.jump_parents[0][:count]]  # [j, d, a] = G_parent[a, d]
        local = _matrix_products(parent, total)  # [j, d, c] = dL/dR_j[d, c]
        grad_rows = local[1:].permute(1, 2, 0, 3).reshape(9, -1)  # (9, 23 T), joint-major
        grad_rotvec = axis_angle_gradient(rotvec, factors, grad_rows).reshape(3, count - 1, frames)
        return local[0].permute(2, 0, 1), grad_rotvec.permute(2, 1, 0), None


def rotation_columns(root: torch.Tensor, body_rotvec: torch.Tensor, kin: _Kinematics) -> torch.Tensor:
    """(72, 3, T) the global rotations' columns over the frames: [3j + k, a, t] = R_j[a, k] at frame t.

    root (T, 3, 3) global orientation; body_rotvec (T, 23, 3) parent-relative axis-angles (radians).
    """
    return _GlobalRotations.apply(root, body_rotvec, kin)


def point_matrix(kin: _Kinematics, betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The rest pelvis joint (3,) and the (24 + S, 72) matrix that takes a frame's rotation columns
    (:func:`rotation_columns`) to its joints and then surface points, relative to the posed pelvis.

    betas (B,). Joint j = pelvis + sum over bones b on its path of R_parent(b) bone_b; surface point
    s = sum_j w_sj (R_j (v_s - J_j) + joint_j) (linear blend skinning, weights summing to 1). Every
    posed point is linear in the rotations' columns, so one product poses all frames: the tensors
    are small and an iteration's time goes to the number of operations, which this keeps low.
    """
    count = NUM_SMPL_JOINTS
    rest_joints = kin.joint_template + kin.joint_shapedirs @ betas  # (24, 3)
    rest_vertices = kin.vertex_template + kin.vertex_shapedirs @ betas  # (S, 3)
    bones = rest_joints[1:] - rest_joints[kin.parents[1:]]  # (23, 3) offsets from each parent
    bone_columns = (kin.bone_parent[:, :, None] * bones[:, None, :]).reshape(count - 1, 3 * count)
    joints = kin.ancestors @ bone_columns  # (24, 72)
    from_joints = kin.vertex_weights[:, :, None] * (rest_vertices[:, None] - rest_joints[None])
    vertices = from_joints.reshape(-1, 3 * count) + kin.vertex_weights @ joints  # (S, 72)
    return rest_joints[0], torch.cat([joints, vertices])


def pose_rows(rows: torch.Tensor, columns: torch.Tensor, pelvis: torch.Tensor) -> torch.Tensor:
    """(3, T, R) posed points, coordinates first: rows (R, 72) of :func:`point_matrix` (or blends of
    them) applied to the rotation columns (72, 3, T), plus the posed pelvis (T, 3).

    With the coordinates first, every later operation on the points runs along contiguous rows (with
    the coordinates last, each broadcasts over rows of 2 or 3 and takes several times longer)."""
    frames = columns.shape[-1]
    relative = (rows @ columns.reshape(len(columns), -1)).reshape(len(rows), 3, frames)
    return relative.permute(1, 2, 0).contiguous() + pelvis.T[:, :, None]


ADAM_BETAS = (0.9, 0.999)  # Kingma & Ba 2015's defaults (and torch's)
ADAM_EPS = 1e-8


def adam_step(
    parameters: list[torch.Tensor],
    means: list[torch.Tensor],
    squares: list[torch.Tensor],
    step: int,
    rate: float,
) -> None:
    """One Adam update of ``parameters`` by their ``.grad`` (Kingma & Ba 2015, Algorithm 1), in place.

    ``means`` and ``squares`` are the first and second moment estimates (each its parameter's
    shape), ``step`` counts from 1. The arithmetic of ``torch.optim.Adam(foreach=True)``, one
    operation for all parameters at a time, without its per-step dispatch (and its import of
    torch._dynamo, 1.3 s per process): the fit's tensors are small, so an iteration's time goes
    to the number of operations.
    """
    beta1, beta2 = ADAM_BETAS
    grads = [parameter.grad for parameter in parameters]
    torch._foreach_lerp_(means, grads, 1 - beta1)
    torch._foreach_mul_(squares, beta2)
    torch._foreach_addcmul_(squares, grads, grads, 1 - beta2)
    denominators = torch._foreach_sqrt(squares)
    torch._foreach_div_(denominators, math.sqrt(1 - beta2**step))
    torch._foreach_add_(denominators, ADAM_EPS)
    torch._foreach_addcdiv_(parameters, means, denominators, -rate / (1 - beta1**step))


def cosine_rate(base_rate: float, step: int, iterations: int) -> float:
    """Learning rate at ``step`` of ``iterations``: cosine annealing from ``base_rate`` to a tenth
    of it (Loshchilov & Hutter 2017, without restarts)."""
    floor = base_rate / 10
    return floor + (base_rate - floor) * (1 + math.cos(math.pi * step / iterations)) / 2


def project(points: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """(3, ...) camera-frame points, coordinates first -> (2, ...) pixels."""
    depth = points[2:].clamp(min=0.1)
    shape = (2,) + (1,) * (points.dim() - 1)
    return (points[:2] / depth) * K.diagonal()[:2].reshape(shape) + K[:2, 2].reshape(shape)


def geman_mcclure(residual_sq: torch.Tensor, sigma: float) -> torch.Tensor:
    return residual_sq * sigma**2 / (residual_sq + sigma**2)


def seen_from_the_side(world_m: np.ndarray) -> bool:
    """Whether a window is seen from the side (:data:`SIDE_VIEW_HIP_DEPTH_RATIO`). world_m: (T, 33, 3)
    MediaPipe world landmarks (z away from the camera), NaN in frames without the subject."""
    hip_line = world_m[:, 23] - world_m[:, 24]  # (T, 3) left - right
    with np.errstate(invalid="ignore"):
        ratios = np.abs(hip_line[:, 2]) / np.linalg.norm(hip_line, axis=1)
    return bool(np.isfinite(ratios).any() and np.nanmedian(ratios) >= SIDE_VIEW_HIP_DEPTH_RATIO)


def hidden_hip_factors(world_m: np.ndarray) -> np.ndarray:
    """(T, 2) factors on the left and right hip landmarks' horizontal 2D residuals: in a window
    seen from the side (:func:`seen_from_the_side`), 0 for the farther hip of each frame, else 1.

    The pelvis hides the far hip in a side view; MediaPipe places it by guesswork (its visibility
    stays near 1) and its pixels strayed by up to 9 px along the walk from the true hip's on the
    rendered side views, which the fit followed by turning the pelvis about the vertical. Its
    height still counts: leaving it out altogether took the fit's synthetic test (true hips seen)
    1.3 cm farther off in depth. world_m: as :func:`seen_from_the_side`'s.
    """
    factors = np.ones((len(world_m), 2))
    if not seen_from_the_side(world_m):
        return factors
    hip_depth = world_m[:, 23, 2] - world_m[:, 24, 2]  # left - right
    factors[hip_depth > 0, 0] = 0.0  # the left hip is the farther
    factors[hip_depth < 0, 1] = 0.0
    return factors


@dataclass(frozen=True)
class PelvisReference:
    """The directions that the pelvis's prior terms measure against (:func:`pelvis_deviations`),
    taken from the fit's current state and held for a few steps (no gradient flows into them).

    anterior, up (3,): the frames' mean anterior and up axes, unit; turn_side (T, 3): unit, level,
    left of each frame's heading, its level anterior axis averaged over a window of frames;
    travel_side (3,): unit, level, left of the direction of travel (first quarter's mean
    translation to the last's), or zeros when that travel is too short (a walker standing or
    turning back).
    """

    anterior: torch.Tensor
    up: torch.Tensor
    turn_side: torch.Tensor
    travel_side: torch.Tensor


def pelvis_reference(
    root: torch.Tensor, transl_m: torch.Tensor, window_frames: int, min_travel_m: float
) -> PelvisReference:
    """The :class:`PelvisReference` of root (T, 3, 3) rotations, columns the body's axes (x left,
    y up, z anterior), and transl_m (T, 3); ``window_frames`` odd. "Level" is perpendicular to the
    frames' mean up axis."""
    with torch.no_grad():
        anterior = root[:, :, 2]
        up = root[:, :, 1].mean(0)
        up = up / up.norm()
        level = anterior - (anterior @ up)[:, None] * up
        heading = torch.nn.functional.avg_pool1d(
            (level / level.norm(dim=1, keepdim=True)).T[None],
            window_frames,
            stride=1,
            padding=window_frames // 2,
            count_include_pad=False,
        )[0].T
        turn_side = torch.linalg.cross(up.expand_as(heading), heading)
        quarter = max(len(transl_m) // 4, 1)
        travel = transl_m[-quarter:].mean(0) - transl_m[:quarter].mean(0)
        travel = travel - (travel @ up) * up
        travel_side = torch.linalg.cross(up, travel / travel.norm().clamp(min=1e-9))
        if travel.norm() < min_travel_m:
            travel_side = torch.zeros_like(travel_side)
        mean_anterior = anterior.mean(0)
        return PelvisReference(
            mean_anterior / mean_anterior.norm(),
            up,
            turn_side / turn_side.norm(dim=1, keepdim=True),
            travel_side,
        )


def pelvis_deviations(
    root: torch.Tensor, reference: PelvisReference
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The pelvis's deviations that its priors weigh (sines, radians for small angles), of root
    (T, 3, 3) as :func:`pelvis_reference`'s:

    - tilt (T,): each frame's up axis along the mean anterior axis, less the mean of that (its tilt
      about the frames' mean); turns about the up axis and obliquity leave it unchanged;
    - turn (T,): each frame's anterior axis along the left of its heading (its turn about the up
      axis away from the heading; the heading may drift or curve, the pelvis oscillates about it
      within a stride); tilt and obliquity leave it unchanged;
    - heading (): the frames' mean anterior axis along the left of the direction of travel (0 where
      the reference has no travel);
    - obliquity (T,): each frame's left axis along the mean up axis, less the mean of that (its
      obliquity about the frames' mean); tilts about its left axis and turns about the mean up
      axis leave it unchanged.

    The turns are scaled by the cosine of the anterior axis's pitch (0.985 at 10 deg): it spares
    the normalisation in every optimiser step.
    """
    along = root[:, :, 1] @ reference.anterior
    anterior = root[:, :, 2]
    turn = (anterior * reference.turn_side).sum(1)
    rise = root[:, :, 0] @ reference.up
    return along - along.mean(), turn, anterior.mean(0) @ reference.travel_side, rise - rise.mean()


# ---------------------------------------------------------------- initialisation


def _interpolate_missing(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Fill rows where ``valid`` is False by linear interpolation over time (edges held)."""
    out = values.copy()
    frames = np.arange(len(values))
    flat = out.reshape(len(values), -1)
    for column in range(flat.shape[1]):
        flat[~valid, column] = np.interp(frames[~valid], frames[valid], flat[valid, column])
    return out


def initial_orientation(world_m: np.ndarray) -> np.ndarray:
    """(T, 3, 3) body-to-camera rotations from MediaPipe's world landmarks (T, 33, 3).

    Body axes: x = right hip -> left hip, y = hip centre -> shoulder centre (orthogonalised),
    z = x cross y (the subject's front). MediaPipe's world axes follow the camera's.
    """
    hips = 0.5 * (world_m[:, 23] + world_m[:, 24])
    shoulders = 0.5 * (world_m[:, 11] + world_m[:, 12])
    x = world_m[:, 23] - world_m[:, 24]
    x /= np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)  # zero rows: frames without subject
    y = shoulders - hips
    y -= (y * x).sum(-1, keepdims=True) * x
    y /= np.maximum(np.linalg.norm(y, axis=-1, keepdims=True), 1e-9)
    z = np.cross(x, y)
    return np.stack([x, y, z], axis=-1)


def initial_translation(
    landmarks_px: np.ndarray, world_m: np.ndarray, K: np.ndarray, pelvis_rest_m: np.ndarray
) -> np.ndarray:
    """(T, 3) translations putting the pelvis at the hip centre's pixel, at the depth where the
    world landmarks' torso (metres, (T, 33, 3)) has its image length (pixels, (T, 33, 2+))."""
    image = landmarks_px[..., :2]
    world = world_m
    torso_px = np.linalg.norm(
        0.5 * (image[:, 11] + image[:, 12]) - 0.5 * (image[:, 23] + image[:, 24]), axis=-1
    )
    torso_m = np.linalg.norm(
        0.5 * (world[:, 11] + world[:, 12]) - 0.5 * (world[:, 23] + world[:, 24]), axis=-1
    )
    valid = (torso_px > 1.0) & (torso_m > 0.0)
    depth = np.where(valid, K[0, 0] * torso_m / np.where(valid, torso_px, 1.0), np.nan)
    hip_px = 0.5 * (image[:, 23] + image[:, 24])
    pelvis = np.stack(
        [(hip_px[:, 0] - K[0, 2]) * depth / K[0, 0], (hip_px[:, 1] - K[1, 2]) * depth / K[1, 1], depth], -1
    )
    # Depth from one frame's torso is noisy: use the clip's median scale along the ray.
    pelvis *= (np.nanmedian(depth) / depth)[:, None]
    return np.nan_to_num(pelvis - pelvis_rest_m)  # frames without a torso are interpolated later


def _silhouette_fields(keypoints: Keypoints) -> tuple[np.ndarray, np.ndarray]:
    """Per frame the distance (in mask cells) to the person mask inside its box, and the boxes.

    Returns fields (T, rows, cols) float32 (0 inside the mask) and boxes (T, 4) (NaN rows: no mask).
    """
    rows, cols = MASK_SHAPE
    bits = np.unpackbits(keypoints.masks_packed, axis=1)[:, : rows * cols].reshape(-1, rows, cols)
    fields = np.zeros(bits.shape, dtype=np.float32)
    for frame, mask in enumerate(bits):
        if mask.any():
            fields[frame] = cv2.distanceTransform((mask == 0).astype(np.uint8), cv2.DIST_L2, 3)
    return fields / rows, keypoints.mask_boxes_px


def _foot_plane(points: np.ndarray, up_hint: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares plane through (N, 3) points; normal oriented along ``up_hint``."""
    centre = points.mean(axis=0)
    _, _, vt = np.linalg.svd(points - centre)
    normal = vt[-1] * np.sign(vt[-1] @ up_hint)
    return normal, float(normal @ centre)


# ---------------------------------------------------------------- the fit


@dataclass
class _Fixed:
    """What later windows of a long clip share with the first: shape, landmark offsets, ground."""

    betas: torch.Tensor
    offsets: torch.Tensor
    ground: tuple[torch.Tensor, torch.Tensor]


@dataclass
class _WindowFit:
    fit: BodyFit
    fixed: _Fixed


def _fit_window(
    keypoints: Keypoints,
    kin: _Kinematics,
    settings: FitSettings,
    K_np: np.ndarray,
    prior: PosePrior,
    progress: Progress,
    fixed: _Fixed | None = None,
) -> _WindowFit:
    """The optimisation of the module docstring over one window of frames (all of a short clip).

    With ``fixed``, the shape, landmark offsets and ground plane are held (the later windows of a
    long clip); without, they are estimated."""
    present = keypoints.present
    num_betas = kin.joint_shapedirs.shape[-1]
    to_t = lambda array: torch.as_tensor(np.asarray(array), dtype=torch.float32)  # noqa: E731

    # Observations (frames without the subject get zero weight).
    mp_index = np.array([c[0] for c in CORRESPONDENCES])
    weights = np.array([c[2] for c in CORRESPONDENCES], dtype=np.float32)
    observed_px = np.nan_to_num(keypoints.landmarks_px[:, mp_index, :2])
    visibility = np.nan_to_num(keypoints.visibility[:, mp_index]) * present[:, None] * weights
    hip_rows = [i for i, c in enumerate(CORRESPONDENCES) if c[0] in (23, 24)]
    along_image_x = np.ones_like(visibility)  # (T, C) factors on the residuals' x
    along_image_x[:, hip_rows] = hidden_hip_factors(keypoints.world_m)
    world = np.nan_to_num(keypoints.world_m[:, mp_index])
    image_y = keypoints.landmarks_px[present, :, 1]
    person_height_px = np.zeros(len(present))
    person_height_px[present] = np.nanmax(image_y, axis=1) - np.nanmin(image_y, axis=1)
    person_height_px = np.maximum(_interpolate_missing(person_height_px, present), 10.0)

    # Initial state.
    root_init = _interpolate_missing(
        initial_orientation(np.nan_to_num(keypoints.world_m)).reshape(-1, 9), present
    ).reshape(-1, 3, 3)
    root_init = Rotation.from_matrix(root_init).as_matrix()  # re-orthonormalise interpolated rows
    pelvis_rest = kin.joint_template[0].numpy()
    transl_init = _interpolate_missing(
        initial_translation(
            np.nan_to_num(keypoints.landmarks_px), np.nan_to_num(keypoints.world_m), K_np, pelvis_rest
        ),
        present,
    )

    K = to_t(K_np)
    # coordinates first, as the posed points (pose_rows)
    observed_px_t, visibility_t = to_t(observed_px).permute(2, 0, 1).contiguous(), to_t(visibility)
    residual_factors_t = torch.stack([to_t(along_image_x), torch.ones(along_image_x.shape)])  # (2, T, C)
    world_t = to_t(world).permute(2, 0, 1)
    height_t = to_t(person_height_px)[:, None]
    prior_mean, prior_chol = to_t(prior.mean), to_t(prior.precision_cholesky)
    lower, upper = to_t(prior.lower), to_t(prior.upper)
    fields, boxes = _silhouette_fields(keypoints)
    has_mask = to_t(present & np.isfinite(boxes).all(axis=1))
    fields_t = to_t(fields)[:, None]  # (T, 1, rows, cols)
    boxes_t = to_t(np.nan_to_num(boxes))

    num_frames = len(present)
    turn_window = round(settings.pelvic_turn_window_s * keypoints.fps) | 1
    side_view = float(seen_from_the_side(keypoints.world_m))
    betas = fixed.betas if fixed else torch.zeros(num_betas, requires_grad=True)
    height = None if fixed else settings.subject_height_m  # a held shape keeps its stature
    if height is not None:
        hold_stature(betas, kin, height)
    root_6d = to_t(root_init[..., :2].transpose(0, 2, 1).reshape(num_frames, 6)).requires_grad_(True)
    body_pose = prior_mean.repeat(num_frames, 1).clone().requires_grad_(True)
    transl = to_t(transl_init).requires_grad_(True)
    # about the hip centre, (3, T, C)
    observed_relative = (world_t - world_t[:, :, hip_rows].mean(2, keepdim=True)).contiguous()

    # Per-clip landmark offsets in the carrying joint's frame (as MoSh calibrates markers): they
    # absorb the constant difference between MediaPipe's landmark and the model point.
    offsets = fixed.offsets if fixed else torch.zeros(len(CORRESPONDENCES), 3, requires_grad=True)
    shared = [] if fixed else [betas, offsets]

    # An iteration poses these rows of point_matrix (joints, foot and silhouette points), and the
    # model points and their hip centre, each a blend of those rows plus its offset turned by the
    # carrying joint (columns 3j..3j+2 of the rotation columns are joint j's rotation). The
    # silhouette and model points, side by side, are projected in one call.
    surface_names = list(FOOT_POINTS) + [f"surface_{i}" for i in range(NUM_SILHOUETTE_POINTS)]
    posed_rows = torch.as_tensor(
        list(range(NUM_SMPL_JOINTS)) + [NUM_SMPL_JOINTS + kin.vertex_index[name] for name in surface_names]
    )
    split = [NUM_SMPL_JOINTS, len(FOOT_POINTS), NUM_SILHOUETTE_POINTS, len(CORRESPONDENCES), 1]
    projected = slice(NUM_SMPL_JOINTS + len(FOOT_POINTS), -1)  # the silhouette and model points
    mixing = to_t(correspondence_matrix(kin))
    carrier_onehot = to_t(np.eye(NUM_SMPL_JOINTS)[carrier_joints(kin)])  # (C, 24)
    shifts = to_t(standing_shifts())

    def posing_rows(betas_: torch.Tensor, offsets_: torch.Tensor) -> torch.Tensor:
        """(R * 72 + 3,) flattened: the rows posed (as above) and the rest pelvis."""
        pelvis, matrix = point_matrix(kin, betas_)
        offsets_ = offsets_ + shifts @ (kin.joint_template + kin.joint_shapedirs @ betas_)
        offset_columns = (carrier_onehot[:, :, None] * offsets_[:, None, :]).reshape(len(offsets_), -1)
        model = mixing @ matrix + offset_columns
        rows = torch.cat([matrix[posed_rows], model, model[hip_rows].mean(0, keepdim=True)])
        return torch.cat([rows.flatten(), pelvis])

    # The rows are linear in the shape and the offsets: posing_rows(b, o) = base + basis_b @ b +
    # basis_o @ o, so that a step builds them in a few products (and differentiates them in as few)
    # instead of the few dozen operations of point_matrix and the blends. The offsets move only the
    # model points' rows and their hip centre's, the last ones.
    num_rows = len(posed_rows) + len(CORRESPONDENCES) + 1
    moved = (len(CORRESPONDENCES) + 1) * 3 * NUM_SMPL_JOINTS  # the entries the offsets move
    with torch.no_grad():
        zero_offsets = torch.zeros(len(CORRESPONDENCES), 3)
        base = posing_rows(torch.zeros(num_betas), zero_offsets)
        shape_basis = torch.stack(
            [posing_rows(unit, zero_offsets) - base for unit in torch.eye(num_betas)], 1
        )
        offset_basis = torch.stack(
            [
                (posing_rows(torch.zeros(num_betas), unit.reshape(-1, 3)) - base)[-3 - moved : -3]
                for unit in torch.eye(zero_offsets.numel())
            ],
            1,
        )  # (moved, 3C)

    def pose_points(root: torch.Tensor, body_rotvec: torch.Tensor, translation: torch.Tensor):
        """(3, T, 24 + 4 + 64 + C + 1) camera frame: the joints, foot points, silhouette points,
        model points and their hip centre (split by ``split``)."""
        shaped = torch.addmv(base, shape_basis, betas)
        unmoved, model, pelvis = shaped.split([len(base) - 3 - moved, moved, 3])
        rows = torch.cat([unmoved, torch.addmv(model, offset_basis, offsets.flatten())]).reshape(num_rows, -1)
        return pose_rows(rows, rotation_columns(root, body_rotvec, kin), pelvis + translation)

    def evaluate():
        return pose_points(rotation_6d_to_matrix(root_6d), body_pose.reshape(num_frames, 23, 3), transl)

    # the terms' weights, in the order energy() lists them (a product of the stacked terms with
    # these costs a fraction of weighting and adding them one by one, which an iteration repeats)
    term_weights = to_t(
        [
            settings.w_2d,
            settings.w_3d,
            # per-frame sums over the 69 pose values and per-point sums over 3 coordinates,
            # averaged, are means over all values times 69 and 3
            settings.w_pose * body_pose.shape[1],
            settings.w_pose / math.radians(settings.pelvic_tilt_sd_deg) ** 2,
            settings.w_pose / math.radians(settings.pelvic_turn_sd_deg) ** 2,
            settings.w_pose / math.radians(settings.heading_sd_deg) ** 2 * side_view,
            settings.w_pose / math.radians(settings.side_obliquity_sd_deg) ** 2 * side_view,
            settings.w_limits * body_pose.shape[1],
            settings.w_shape,
            settings.w_offset / OFFSET_SCALE_M**2 * 3,
            settings.w_velocity * 100 * 3,
            settings.w_acceleration * 100 * 3,
            settings.w_silhouette,
            settings.w_contact * 100,
            settings.w_contact * 100,
        ]
    )

    def data_terms(
        points: torch.Tensor, hip_centre: torch.Tensor, points_px: torch.Tensor
    ) -> list[torch.Tensor]:
        """points (3, T, C), hip_centre (3, T, 1), points_px (2, T, C) the points projected."""
        residual = (points_px - observed_px_t) / height_t * residual_factors_t
        data_2d = (visibility_t * geman_mcclure((residual**2).sum(0), settings.robust_sigma)).mean()
        data_3d = (visibility_t * ((points - hip_centre - observed_relative) ** 2).sum(0)).mean()
        return [data_2d, data_3d]

    # The torso stage moves the body rigidly (its pose, shape and offsets held), so its model points
    # are fixed in the root's frame: rotating those costs a fraction of posing the body each step.
    with torch.no_grad():
        identity = torch.eye(3).expand(num_frames, 3, 3)
        unturned = pose_points(identity, body_pose.reshape(num_frames, 23, 3), torch.zeros(num_frames, 3))
        rest_pelvis = unturned[:, 0, 0]
        # (T, C + 1, 3), coordinates last for the turn by the root
        root_relative = (unturned[:, :, -len(CORRESPONDENCES) - 1 :] - rest_pelvis[:, None, None]).permute(
            1, 2, 0
        )

    def energy(
        stage: str, ground: tuple[torch.Tensor, torch.Tensor] | None, reference: PelvisReference | None
    ) -> torch.Tensor:
        if stage == "torso":
            root = rotation_6d_to_matrix(root_6d)
            turned = (rest_pelvis + transl[:, None] + root_relative @ root.transpose(-1, -2)).permute(2, 0, 1)
            terms = data_terms(turned[:, :, :-1], turned[:, :, -1:], project(turned[:, :, :-1], K))
            return torch.stack(terms) @ term_weights[:2]
        root = rotation_6d_to_matrix(root_6d)
        posed = pose_points(root, body_pose.reshape(num_frames, 23, 3), transl)
        joints, feet, _, points, hip_centre = posed.split(split, dim=2)
        silhouette_px, points_px = project(posed[:, :, projected], K).split(
            [NUM_SILHOUETTE_POINTS, len(CORRESPONDENCES)], dim=2
        )
        velocity = joints[:, 1:] - joints[:, :-1]
        acceleration = velocity[:, 1:] - velocity[:, :-1]
        terms = [
            *data_terms(points, hip_centre, points_px),
            ((body_pose - prior_mean) @ prior_chol).square().mean(),
            *(deviation.square().mean() for deviation in pelvis_deviations(root, reference)),
            (body_pose - body_pose.clamp(lower, upper)).square().mean(),  # beyond the limits
            betas.square().sum(),
            offsets.square().mean(),
            velocity.square().mean(),
            acceleration.square().mean() if num_frames > 2 else velocity.new_zeros(()),
            _silhouette_term(silhouette_px),
        ]
        if ground is not None:
            normal, offset = ground
            heights = (normal @ feet.flatten(1)).reshape(num_frames, -1) - offset  # (T, 4)
            lowest = -torch.logsumexp(-heights / 0.01, dim=1) * 0.01  # soft minimum
            terms += [(lowest**2).mean(), (heights.clamp(max=0) ** 2).mean()]
        return torch.stack(terms) @ term_weights[: len(terms)]

    # the boxes' pixels -> grid_sample's [-1, 1] (degenerate boxes held at a pixel's width)
    box_size = torch.stack([boxes_t[:, 2] - boxes_t[:, 0], boxes_t[:, 3] - boxes_t[:, 1]], -1).clamp(min=1)
    box_scale = (2 / box_size).T[:, :, None]  # (2, T, 1)
    box_shift = (-1 - boxes_t[:, :2] * 2 / box_size).T[:, :, None]
    mask_share = has_mask / has_mask.sum().clamp(min=1)  # (T,) each masked frame's share of the mean

    def _silhouette_term(pixels: torch.Tensor) -> torch.Tensor:
        """pixels (2, T, S): the projected silhouette points."""
        grid = pixels * box_scale + box_shift  # (2, T, S)
        distance = torch.nn.functional.grid_sample(
            fields_t, grid.permute(1, 2, 0)[:, :, None], align_corners=True, padding_mode="border"
        )
        outside = (grid.abs() - 1).clamp(min=0).sum(0)  # beyond the box
        per_frame = ((distance[:, 0, :, 0] + outside) ** 2).mean(-1)
        return per_frame @ mask_share

    def optimise(parameters, iterations: int, stage: str, ground, report: Progress) -> None:
        means, squares = [torch.zeros_like(p) for p in parameters], [torch.zeros_like(p) for p in parameters]
        reference = None
        for step in range(iterations):
            for parameter in parameters:
                parameter.grad = None
            if stage != "torso" and step % REFERENCE_EVERY == 0:
                reference = pelvis_reference(
                    rotation_6d_to_matrix(root_6d), transl, turn_window, settings.heading_min_travel_m
                )
            loss = energy(stage, ground, reference)
            loss.backward()
            rate = cosine_rate(settings.learning_rate, step, iterations)
            with torch.no_grad():
                adam_step(parameters, means, squares, step + 1, rate)
            if height is not None and any(parameter is betas for parameter in parameters):
                hold_stature(betas, kin, height)
            if step % 20 == 0:
                report(step / iterations, f"{stage} {step}/{iterations} energy {loss.item():.4g}")

    main_iterations = settings.iterations
    with progress.stage(0.0, 0.15, "fit: torso") as report:
        optimise([root_6d, transl], max(main_iterations // 5, 10), "torso", None, report)
    with progress.stage(0.15, 0.7, "fit: body") as report:
        optimise([*shared, root_6d, body_pose, transl], main_iterations, "body", None, report)
    if fixed:
        ground = fixed.ground
    else:
        with torch.no_grad():
            feet = evaluate().split(split, dim=2)[1].permute(1, 2, 0).numpy()
            up_hint = rotation_6d_to_matrix(root_6d)[:, :, 1].mean(0).numpy()  # the bodies' mean y axis
            lowest = feet[np.arange(num_frames), np.argmin(feet @ up_hint, axis=1)]
            normal, offset = _foot_plane(lowest[present], up_hint)
        ground = (to_t(normal), torch.tensor(offset, dtype=torch.float32))
    with progress.stage(0.7, 1.0, "fit: contact") as report:
        optimise(
            [*shared[:1], root_6d, body_pose, transl],
            max(main_iterations // 3, 10),
            "contact",
            ground,
            report,
        )

    with torch.no_grad():
        joints, _, _, points, _ = evaluate().split(split, dim=2)
        errors = torch.linalg.norm(project(points, K) - observed_px_t, dim=0).numpy()
        visible = visibility > 0.3 * weights
        reprojection = np.where(
            visible.any(1), (errors * visible).sum(1) / np.maximum(visible.sum(1), 1), np.nan
        )
        root = rotation_6d_to_matrix(root_6d).numpy()
    fit = BodyFit(
        betas=betas.detach().numpy().copy(),
        global_orient=Rotation.from_matrix(root.astype(np.float64)).as_rotvec().astype(np.float32),
        body_pose=body_pose.detach().numpy().copy(),
        transl=transl.detach().numpy().copy(),
        joints_m=joints.permute(1, 2, 0).numpy().copy(),
        camera_K=K_np,
        focal_source="",
        ground_normal=ground[0].numpy().astype(np.float64),
        ground_offset_m=float(ground[1]),
        reprojection_px=np.where(present, reprojection, np.nan),
    )
    return _WindowFit(fit, _Fixed(betas.detach(), offsets.detach(), ground))


def _slice_keypoints(keypoints: Keypoints, start: int, stop: int) -> Keypoints:
    frames = len(keypoints.times_s)
    arrays = {
        name: value[start:stop] if np.ndim(value) and len(value) == frames else value
        for name, value in keypoints.to_arrays().items()
    }
    return Keypoints.from_arrays(arrays)


def window_starts(num_frames: int, window: int, overlap: int) -> list[int]:
    """Start frames of overlapping windows covering ``num_frames`` (one window if it fits)."""
    if num_frames <= window:
        return [0]
    starts = list(range(0, num_frames - window, window - overlap))
    return [*starts, num_frames - window]


def _stitch(parts: list[tuple[int, BodyFit]], num_frames: int) -> dict[str, np.ndarray]:
    """Per-frame arrays of overlapping window fits, cross-faded linearly where windows overlap."""
    # float32 like the windows' own arrays: a long clip's sums are the fit stage's largest arrays
    weight_sum = np.zeros(num_frames, dtype=np.float32)
    sums: dict[str, np.ndarray] = {}
    for start, fit in parts:
        length = len(fit.transl)
        ramp = np.minimum(np.arange(1, length + 1), np.arange(length, 0, -1)).astype(np.float32)
        values = {
            "root": Rotation.from_rotvec(fit.global_orient).as_matrix(),
            "body_pose": fit.body_pose,
            "transl": fit.transl,
            "joints_m": fit.joints_m,
            "reprojection_px": np.nan_to_num(fit.reprojection_px, nan=-1.0),
        }
        for name, value in values.items():
            shaped = ramp.reshape((-1,) + (1,) * (value.ndim - 1))
            total = sums.setdefault(name, np.zeros((num_frames, *value.shape[1:]), dtype=np.float32))
            total[start : start + length] += shaped * value
        weight_sum[start : start + length] += ramp
    covered = weight_sum > 0
    safe = np.where(covered, weight_sum, 1.0)
    for total in sums.values():
        total /= safe.reshape((-1,) + (1,) * (total.ndim - 1))
    if covered.all():
        return sums
    # Frames no window fitted (a long stretch without the subject) hold their neighbours' values.
    return {name: _interpolate_missing(total, covered) for name, total in sums.items()}


def fit_bodies(
    keypoints: Keypoints,
    body: BodyModel,
    settings: FitSettings = FitSettings(),
    metadata_focal_px: float | None = None,
    progress: Progress | None = None,
) -> BodyFit:
    """Fit one shape and per-frame poses to ``keypoints``; see the module docstring.

    A clip longer than ``settings.window_frames`` is fitted in overlapping windows (memory stays
    flat as the clip grows): the window with the most frames of the subject estimates the shape,
    landmark offsets and ground plane, the others hold them, and overlaps are cross-faded.
    """
    started = time.perf_counter()
    progress = progress or Progress()
    present = keypoints.present
    if present.sum() < 2:
        raise HMNError("keypoints", "fewer than two frames show the subject")
    focal, focal_source = choose_focal(
        keypoints.width, keypoints.height, settings.focal_px, metadata_focal_px
    )
    K_np = camera_matrix(keypoints.width, keypoints.height, focal)
    prior = settings.pose_prior or load_pose_prior()
    surface_names = sorted(
        {name for _, blend, _ in CORRESPONDENCES for name in blend if name not in SMPL_JOINT_INDEX}
    )
    silhouette_ids = np.linspace(0, body.num_vertices - 1, NUM_SILHOUETTE_POINTS).astype(int)
    vertex_ids = {name: body.landmarks[name] for name in surface_names}
    vertex_ids |= {f"surface_{i}": int(v) for i, v in enumerate(silhouette_ids)}
    kin = _kinematics(body, vertex_ids)

    num_frames = len(present)
    starts = window_starts(num_frames, settings.window_frames, settings.window_overlap)
    window = min(num_frames, settings.window_frames)
    seen = [int(present[start : start + window].sum()) for start in starts]
    order = sorted(range(len(starts)), key=lambda i: -seen[i])  # the best-seen window first
    parts: list[tuple[int, BodyFit]] = []
    fixed = None
    for done, index in enumerate(order):
        start = starts[index]
        if seen[index] < 2:  # a window without the subject: carried by its neighbours' cross-fade
            continue
        with progress.stage(
            done / len(order), (done + 1) / len(order), f"window {done + 1}/{len(order)}"
        ) as stage:
            result = _fit_window(
                _slice_keypoints(keypoints, start, start + window), kin, settings, K_np, prior, stage, fixed
            )
        fixed = fixed or result.fixed
        parts.append((start, result.fit))
        # Each window's many small autograd tensors leave free pages inside the heap, between the
        # results that live on; handed back, they do not add up over a long clip's windows.
        release_free_memory()
    if len(parts) == 1 and starts == [0]:
        fit = parts[0][1]
        fit.focal_source, fit.timing_s = focal_source, time.perf_counter() - started
        return fit
    stitched = _stitch(sorted(parts, key=lambda part: part[0]), num_frames)
    first = parts[0][1]
    return BodyFit(
        betas=first.betas,
        global_orient=Rotation.from_matrix(stitched["root"])
        .as_rotvec()
        .astype(np.float32),  # re-orthonormalised
        body_pose=stitched["body_pose"],
        transl=stitched["transl"],
        joints_m=stitched["joints_m"],
        camera_K=K_np,
        focal_source=focal_source,
        ground_normal=first.ground_normal,
        ground_offset_m=first.ground_offset_m,
        reprojection_px=np.where(present, stitched["reprojection_px"], np.nan),
        timing_s=time.perf_counter() - started,
    )


# ---------------------------------------------------------------- cache


FIT_VERSION = 19  # bump when the fit's output changes for the same inputs


def body_fingerprint(body: BodyModel) -> str:
    """A short hash of the body's arrays, so that a rebuilt or other body invalidates cached fits."""
    digest = hashlib.sha256(body.kind.encode())
    for array in (body.v_template_m, body.shapedirs, body.J_regressor, body.weights):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def fit_settings_key(settings: FitSettings, body: BodyModel, metadata_focal_px: float | None) -> dict:
    """Everything that changes the fit for given keypoints (JSON-able, for the stage cache)."""
    values = {name: getattr(settings, name) for name in settings.__dataclass_fields__ if name != "pose_prior"}
    return {
        "version": FIT_VERSION,
        "body": body_fingerprint(body),
        "metadata_focal_px": metadata_focal_px,
        **values,
    }


def fit_to_arrays(fit: BodyFit) -> dict[str, np.ndarray]:
    return {name: np.asarray(getattr(fit, name)) for name in fit.__dataclass_fields__}


def fit_from_arrays(arrays: dict[str, np.ndarray]) -> BodyFit:
    values = {name: arrays[name] for name in BodyFit.__dataclass_fields__}
    values.update(
        focal_source=str(values["focal_source"]),
        ground_offset_m=float(values["ground_offset_m"]),
        timing_s=float(values["timing_s"]),
    )
    return BodyFit(**values)
