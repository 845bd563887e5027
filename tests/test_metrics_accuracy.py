"""MPJPE, PA-MPJPE, acceleration error, IoU, PSNR and Hausdorff on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hmn_blender_addon.metrics.accuracy import (
    accel_error_mm,
    hausdorff_mm,
    mpjpe_mm,
    pa_mpjpe_mm,
    psnr_db,
    silhouette_iou,
)

RNG = np.random.default_rng(0)
TRUTH = RNG.normal(size=(5, 24, 3))


def test_mpjpe_ignores_translation_and_counts_joint_offsets():
    assert mpjpe_mm(TRUTH + np.array([1.0, 2.0, 3.0]), TRUTH) < 1e-9
    moved = TRUTH.copy()
    moved[:, 5] += [0.0, 0.024, 0.0]  # one joint of 24 off by 24 mm
    np.testing.assert_allclose(mpjpe_mm(moved, TRUTH), 1.0)


def test_pa_mpjpe_removes_a_similarity_but_not_a_deformation():
    rotation = Rotation.from_euler("xyz", [30, -50, 10], degrees=True).as_matrix()
    similar = 1.7 * TRUTH @ rotation.T + [0.3, -1.0, 2.0]
    assert pa_mpjpe_mm(similar, TRUTH) < 1e-6
    assert mpjpe_mm(similar, TRUTH) > 100
    mirrored = TRUTH * [-1.0, 1.0, 1.0]  # a reflection is not a rotation
    assert pa_mpjpe_mm(mirrored, TRUTH) > 100


def test_accel_error_of_a_constant_velocity_drift_is_zero():
    drift = np.arange(5)[:, None, None] * RNG.normal(size=(1, 24, 3))
    assert accel_error_mm(TRUTH + drift, TRUTH) < 1e-9
    bump = TRUTH.copy()
    bump[2] += 0.001  # every joint 1 mm off in the middle frame: accel errors 1, 2, 1 mm/frame^2
    bump[2, 0] -= 0.001  # ... except the pelvis, which the alignment uses
    assert accel_error_mm(bump, TRUTH) > 0


def test_masks_and_hausdorff_by_hand():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[:2] = True  # 8 pixels
    b[1:3] = True  # 8 pixels, 4 shared
    np.testing.assert_allclose(silhouette_iou(a, b), 4 / 12)
    np.testing.assert_allclose(psnr_db(a, b), 10 * np.log10(16 / 8))
    assert psnr_db(a, a) == float("inf")
    # a stack of masks is one image for the MSE: 8 wrong pixels of 3 x 16
    np.testing.assert_allclose(psnr_db(np.stack([a, a, a]), np.stack([a, b, a])), 10 * np.log10(48 / 8))
    with pytest.raises(ValueError, match=r"image shapes differ: \(4, 4\) and \(2, 4, 4\)"):
        psnr_db(a, np.stack([a, a]))
    square = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], float)
    # the extra centre point is sqrt(0.5^2 + 0.5^2 + 0.003^2) m from the nearest corner, in one direction only
    np.testing.assert_allclose(
        hausdorff_mm(square, np.vstack([square, [[0.5, 0.5, 0.003]]])), 1000 * np.sqrt(0.500009)
    )
    np.testing.assert_allclose(hausdorff_mm(square, square + np.array([0, 0, 0.002])), 2.0)
