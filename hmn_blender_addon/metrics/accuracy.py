"""Reconstruction and joint accuracy against truth (DESIGN.md section 6, REFERENCES.md section 7).

Joint arrays are (T, J, 3) in metres in the same (camera) frame; results are in millimetres.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from ..skeleton import SMPL_JOINT_INDEX

PELVIS = SMPL_JOINT_INDEX["pelvis"]


def pelvis_aligned(joints_m: np.ndarray) -> np.ndarray:
    """(T, J, 3) joints relative to their pelvis joint."""
    return joints_m - joints_m[:, PELVIS : PELVIS + 1]


def mpjpe_mm(estimate_m: np.ndarray, truth_m: np.ndarray) -> float:
    """Mean joint distance after moving the estimate's pelvis onto the true pelvis, per frame, mm."""
    return 1000.0 * float(
        np.linalg.norm(pelvis_aligned(estimate_m) - pelvis_aligned(truth_m), axis=-1).mean()
    )


def procrustes_aligned(estimate_m: np.ndarray, truth_m: np.ndarray) -> np.ndarray:
    """(T, J, 3) estimate after the per-frame similarity (scale, rotation with det +1, translation)
    that best fits it onto the truth in the least-squares sense."""
    mu_e = estimate_m.mean(axis=1, keepdims=True)
    mu_t = truth_m.mean(axis=1, keepdims=True)
    e, t = estimate_m - mu_e, truth_m - mu_t
    u, s, vt = np.linalg.svd(np.swapaxes(e, 1, 2) @ t)  # (T, 3, 3) cross-covariance
    d = np.sign(np.linalg.det(u @ vt))
    s[:, -1] *= d
    u[:, :, -1] *= d[:, None]
    rotation = u @ vt  # rows: e @ rotation fits t
    scale = s.sum(axis=1) / (e**2).sum(axis=(1, 2))
    return scale[:, None, None] * (e @ rotation) + mu_t


def pa_mpjpe_mm(estimate_m: np.ndarray, truth_m: np.ndarray) -> float:
    """MPJPE after a per-frame Procrustes (similarity) alignment, mm."""
    aligned = procrustes_aligned(estimate_m, truth_m)
    return 1000.0 * float(np.linalg.norm(aligned - truth_m, axis=-1).mean())


def accel_error_mm(estimate_m: np.ndarray, truth_m: np.ndarray) -> float:
    """Mean norm of the difference of second finite differences of pelvis-aligned joints, mm/frame^2
    (SmoothNet's definition)."""
    accel_e = np.diff(pelvis_aligned(estimate_m), n=2, axis=0)
    accel_t = np.diff(pelvis_aligned(truth_m), n=2, axis=0)
    return 1000.0 * float(np.linalg.norm(accel_e - accel_t, axis=-1).mean())


def jitter_mm(joints_m: np.ndarray) -> float:
    """Mean acceleration magnitude of the pelvis-aligned joints, mm/frame^2."""
    return 1000.0 * float(np.linalg.norm(np.diff(pelvis_aligned(joints_m), n=2, axis=0), axis=-1).mean())


def silhouette_iou(mask_a: np.ndarray, mask_b: np.ndarray) -> float:
    """|A and B| / |A or B| over all pixels of (..., H, W) boolean masks (1.0 when both are empty)."""
    a, b = mask_a.astype(bool), mask_b.astype(bool)
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def psnr_db(image_a: np.ndarray, image_b: np.ndarray, data_range: float = 1.0) -> float:
    """10 log10(range^2 / MSE) of two images (masks as 0/1 with range 1); inf when identical."""
    if np.shape(image_a) != np.shape(image_b):
        raise ValueError(f"image shapes differ: {np.shape(image_a)} and {np.shape(image_b)}")
    # a stack one image at a time: its float64 copies would be 8x a stack of masks
    pairs = zip(image_a, image_b, strict=True) if np.ndim(image_a) > 2 else [(image_a, image_b)]
    squared = sum(float(np.sum((a.astype(np.float64) - b.astype(np.float64)) ** 2)) for a, b in pairs)
    return psnr_from_mse_db(squared / np.size(image_a), data_range)


def psnr_from_mse_db(mse: float, data_range: float = 1.0) -> float:
    """10 log10(range^2 / MSE); inf for an MSE of 0."""
    return float("inf") if mse == 0 else 10.0 * float(np.log10(data_range**2 / mse))


def hausdorff_mm(points_a_m: np.ndarray, points_b_m: np.ndarray) -> float:
    """Symmetric Hausdorff distance between (N, 3) and (M, 3) point sets (e.g. mesh vertices), mm."""
    a_to_b = cKDTree(points_b_m).query(points_a_m)[0].max()
    b_to_a = cKDTree(points_a_m).query(points_b_m)[0].max()
    return 1000.0 * float(max(a_to_b, b_to_a))
