"""The body's silhouette and surface scores (bench and report quality) against a known truth."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from spine_masks import keypoints_from_masks

from hmn_blender_addon.bench import score_body
from hmn_blender_addon.body.model import body_forward, load_body_model
from hmn_blender_addon.report import body_masks, reconstruction_quality

K = np.array([[500.0, 0.0, 160.0], [0.0, 500.0, 120.0], [0.0, 0.0, 1.0]])


def test_body_scores_read_perfect_on_the_truth_and_the_known_morphology_error():
    body = load_body_model("open")
    frames = 4
    pose = np.zeros((frames, 24, 3))
    pose[:, 0] = [np.pi, 0.0, 0.0]  # upright in the camera frame (y down)
    pose[:, 4, 0] = np.linspace(0.0, 0.6, frames)  # a bending knee
    transl = np.array([[0.0, 0.0, 5.0]] * frames) + np.linspace(0, 0.2, frames)[:, None] * [1, 0, 0]
    betas = np.zeros(body.num_betas)
    with torch.no_grad():
        vertices, joints = body_forward(
            body, torch.zeros(frames, body.num_betas), torch.as_tensor(pose), torch.as_tensor(transl)
        )
    vertices, joints = vertices.numpy().astype(np.float64), joints.numpy().astype(np.float64)
    masks = body_masks(vertices, body.faces, K, (320, 240))
    assert masks.any(axis=(1, 2)).all()
    truth = {
        "joints_camera_m": joints.tolist(),
        "spine_morphology": {"lumbar_lordosis_deg": 40.0, "thoracic_kyphosis_deg": 35.0},
    }
    result = SimpleNamespace(
        body_model="open",
        betas=betas,
        global_orient=pose[:, 0],
        body_pose=pose[:, 1:].reshape(frames, -1),
        transl=transl,
        camera_K=K,
        joints_m=joints,
        spine_morphology_json=json.dumps({"lumbar_lordosis_deg": 43.5, "thoracic_kyphosis_deg": 33.0}),
    )
    moved = vertices[[0, 2]] + [0.0, 0.0, 0.3]  # a true surface 30 cm deeper than its own pelvis says
    errors = score_body(result, truth, masks, lambda: (np.array([0, 2]), vertices[[0, 2]]))
    assert errors["lordosis_err_deg"] == pytest.approx(3.5)
    assert errors["kyphosis_err_deg"] == pytest.approx(2.0)
    assert errors["silhouette_iou"] == 1.0 and errors["mask_psnr_db"] == float("inf")
    assert errors["surface_hausdorff_mm"] == pytest.approx(0.0, abs=1e-3)
    shifted = score_body(result, truth, masks, lambda: (np.array([0, 2]), moved))
    assert shifted["surface_hausdorff_mm"] == pytest.approx(300.0, abs=1e-3)

    # the report's quality block against MediaPipe-like stored masks of the same silhouettes (the
    # 96 x 48 stored crop of a T-posed body thins its outstretched arms)
    keypoints = keypoints_from_masks(masks)
    quality = reconstruction_quality(vertices, body.faces, K, keypoints, np.array([1.0, 2.0, np.nan, 3.0]))
    assert quality["silhouette_iou"] > 0.85 and quality["mask_psnr_db"] > 15.0
    assert quality["reprojection_px"] == pytest.approx(2.0)
    assert quality["frames_with_person"] == 1.0
