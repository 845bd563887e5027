"""Synthetic observations of a known SMPL-format body: what MediaPipe would see, from the truth.

Used by the fitting tests: the truth comes from ``smplx.SMPL`` (with pose correctives), the fit
uses its own kinematics, so the test crosses a small model gap as real data would.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from scipy.spatial.transform import Rotation

from hmn_blender_addon.body.model import BodyModel, as_smplx
from hmn_blender_addon.fitting import CORRESPONDENCES, camera_matrix, standing_shifts
from hmn_blender_addon.keypoints import MASK_SHAPE, Keypoints
from hmn_blender_addon.skeleton import SMPL_JOINT_INDEX
from hmn_blender_addon.spine.dynamic import shaped_rest


def truth_motion(body: BodyModel, clip, frames: int, seed: int, depth_m: float = 5.0) -> dict:
    """A side view of ``clip``'s first frames: the walker crosses the image left to right."""
    rng = np.random.default_rng(seed)
    betas = np.zeros(body.num_betas, np.float32)
    betas[:10] = rng.normal(0, 0.7, 10)
    body_pose = clip.local_rotvec_rad[:frames, 1:].reshape(frames, 69)
    # Heading of the capture removed, then the walker turned to face the camera's +x (side view),
    # upright in the camera frame (y down).
    heading = Rotation.from_rotvec(clip.local_rotvec_rad[:frames, 0])
    yaw = heading.as_euler("YXZ")[:, 0].mean()
    to_camera = Rotation.from_euler("x", np.pi) * Rotation.from_euler("y", -yaw + np.pi / 2)
    global_orient = (to_camera * heading).as_rotvec().astype(np.float32)
    path = to_camera.apply(clip.root_transl_m[:frames] - clip.root_transl_m[:1])
    transl = (path + np.array([0.0, 0.1, depth_m])).astype(np.float32)
    model = as_smplx(body, num_betas=body.num_betas, batch_size=frames)
    with torch.no_grad():
        out = model(
            betas=torch.as_tensor(betas)[None].expand(frames, -1),
            global_orient=torch.as_tensor(global_orient),
            body_pose=torch.as_tensor(body_pose),
            transl=torch.as_tensor(transl),
        )
    return {
        "betas": betas,
        "joints_m": out.joints[:, :24].numpy(),
        "vertices_m": out.vertices.numpy(),
        "global_orient": global_orient,
    }


def observe(body: BodyModel, truth: dict, width: int, height: int, focal_px: float, seed: int) -> Keypoints:
    """MediaPipe-like keypoints (pixel noise, world landmarks with noise, masks) of the truth."""
    rng = np.random.default_rng(seed)
    K = camera_matrix(width, height, focal_px)
    joints, vertices = truth["joints_m"], truth["vertices_m"]
    frames = len(joints)
    points = np.repeat(joints[:, :1], 33, axis=1)  # landmarks without a model point: unseen, at the pelvis
    for mp_index, blend, _ in CORRESPONDENCES:
        points[:, mp_index] = sum(
            coefficient
            * (
                joints[:, SMPL_JOINT_INDEX[name]]
                if name in SMPL_JOINT_INDEX
                else vertices[:, body.landmarks[name]]
            )
            for name, coefficient in blend.items()
        )
    # the landmarks that move as their blend but stand at their first joint (the fit's hips)
    rest_shifts = standing_shifts() @ shaped_rest(body, truth["betas"])[1]  # (C, 3)
    pelvis = Rotation.from_rotvec(truth["global_orient"])
    for row, (mp_index, _, _) in enumerate(CORRESPONDENCES):
        points[:, mp_index] += pelvis.apply(rest_shifts[row])
    projected = points[..., :2] / points[..., 2:] * focal_px + K[:2, 2]
    landmarks = np.concatenate([projected + rng.normal(0, 2.0, projected.shape), points[..., 2:]], -1)
    visibility = np.zeros((frames, 33), np.float32)
    visibility[:, [c[0] for c in CORRESPONDENCES]] = 0.95
    hips = 0.5 * (points[:, 23] + points[:, 24])
    world = points - hips[:, None] + rng.normal(0, 0.015, points.shape)
    boxes = np.zeros((frames, 4), np.float32)
    masks = np.zeros((frames, MASK_SHAPE[0] * MASK_SHAPE[1] // 8), np.uint8)
    pixels = vertices[..., :2] / vertices[..., 2:] * focal_px + K[:2, 2]
    for frame in range(frames):
        full = np.zeros((height, width), np.uint8)
        triangles = np.round(pixels[frame][body.faces]).astype(np.int32)
        cv2.fillPoly(full, list(triangles), 1)
        ys, xs = np.nonzero(full)
        boxes[frame] = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        crop = full[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        small = cv2.resize(crop, MASK_SHAPE[::-1], interpolation=cv2.INTER_NEAREST)
        masks[frame] = np.packbits(small.ravel())
    return Keypoints(
        landmarks_px=landmarks.astype(np.float32),
        visibility=visibility,
        world_m=world.astype(np.float32),
        detected=np.ones(frames, bool),
        interpolated=np.zeros(frames, bool),
        times_s=np.arange(frames) / 30.0,
        mask_boxes_px=boxes,
        masks_packed=masks,
        width=width,
        height=height,
        fps=30.0,
    )
