"""Real footage: the Sports2D clip (side view, 1768x994, a bystander in the background)."""

from __future__ import annotations

import numpy as np
import pytest

from hmn_blender_addon.body.model import load_body_model
from hmn_blender_addon.fitting import FitSettings, fit_bodies

CALIBRATED_FOCAL_PX = 2520.0  # the clip's Calib_demo.toml


@pytest.fixture(scope="module")
def fitted(sports2d):
    keypoints, _ = sports2d
    return keypoints, fit_bodies(
        keypoints, load_body_model("open"), FitSettings(focal_px=CALIBRATED_FOCAL_PX)
    )


def test_the_walker_is_fitted_wherever_he_is_seen_and_reprojects_within_8_px(fitted):
    keypoints, fit = fitted
    seen = keypoints.present
    assert np.isfinite(fit.reprojection_px[seen]).all() and np.isnan(fit.reprojection_px[~seen]).all()
    print(f"\nSports2D reprojection: mean {np.nanmean(fit.reprojection_px):.1f} px")
    assert np.nanmean(fit.reprojection_px) <= 8.0
    assert fit.focal_source == "option" and fit.camera_K[0, 0] == CALIBRATED_FOCAL_PX


def test_the_fitted_walker_stands_on_the_ground_and_walks_right_to_left(fitted):
    keypoints, fit = fitted
    seen = np.flatnonzero(keypoints.present)
    pelvis = fit.joints_m[seen, 0]
    assert pelvis[-1, 0] < pelvis[0, 0] - 2.0  # metres toward image left
    # the camera looks level-ish at the walk: the ground normal points up (camera -y)
    assert fit.ground_normal[1] < -0.9
    heights = pelvis @ fit.ground_normal - fit.ground_offset_m
    assert 0.75 < np.median(heights) < 1.15  # an adult's pelvis above the floor
