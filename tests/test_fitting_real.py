"""Real footage: the Sports2D clip (side view, 1768x994, a bystander in the background)."""

from __future__ import annotations

import numpy as np
import pytest

from hmn_blender_addon.body.model import load_body_model
from hmn_blender_addon.fitting import FitSettings, fit_bodies
from hmn_blender_addon.metrics.cycles import heel_strikes_from_joints
from hmn_blender_addon.metrics.gait import gait_markers
from hmn_blender_addon.normative import CADENCE_BAND_STEPS_PER_MIN, WALKING_SPEED_BAND_M_S
from hmn_blender_addon.report import world_from_camera

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


def test_the_walkers_speed_and_cadence_are_those_of_normal_adult_walking(fitted):
    """Speed within the slow-to-fast pace of healthy adults, 0.82-1.72 m/s (Murtagh et al. 2020), and
    cadence within the normal walking cadence of adults, 81-138 steps/min (Tudor-Locke & Rowe 2012):
    ``normative.WALKING_SPEED_BAND_M_S`` and ``CADENCE_BAND_STEPS_PER_MIN``, at the fitted body's scale."""
    keypoints, fit = fitted
    seen = np.flatnonzero(keypoints.present)
    joints = fit.joints_m[seen]
    lab = world_from_camera(fit.ground_normal, fit.ground_offset_m, joints[:, 0])
    joints_lab = joints @ lab[:3, :3].T + lab[:3, 3]
    strikes = heel_strikes_from_joints(joints_lab, keypoints.fps)
    gait = gait_markers(joints_lab, strikes, keypoints.fps)
    print(
        f"\nSports2D walker: {gait['walking_speed_m_s']:.2f} m/s, "
        f"{gait['cadence_steps_per_min']:.0f} steps/min, stride {gait['stride_length_m']['mean']:.2f} m"
    )
    assert WALKING_SPEED_BAND_M_S == (0.82, 1.72) and CADENCE_BAND_STEPS_PER_MIN == (81.0, 138.0)
    assert WALKING_SPEED_BAND_M_S[0] <= gait["walking_speed_m_s"] <= WALKING_SPEED_BAND_M_S[1]
    assert CADENCE_BAND_STEPS_PER_MIN[0] <= gait["cadence_steps_per_min"] <= CADENCE_BAND_STEPS_PER_MIN[1]
    # the walk is steady: stride length and step times the same on both sides within 10%
    assert gait["stride_length_m"]["sd"] < 0.1 * gait["stride_length_m"]["mean"]
    assert gait["symmetry_index_pct"]["step_time"] < 10.0
