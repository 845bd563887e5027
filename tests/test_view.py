"""The camera's view of a walk from hand-made geometry: its azimuth, kind and the planes it shows."""

from __future__ import annotations

import numpy as np
import pytest

from hmn_blender_addon.metrics.view import view_azimuth_deg, view_of_walk


def _lab(walking_azimuth_deg: float) -> np.ndarray:
    """world_from_camera of a camera looking along its +z at a walker 4 m away whose walking
    direction makes the given angle with the direction back to the camera (camera y down)."""
    angle = np.radians(walking_azimuth_deg)
    forward = np.array([np.sin(angle), 0.0, -np.cos(angle)])  # -z points back to the camera
    up = np.array([0.0, -1.0, 0.0])
    lab = np.eye(4)
    lab[:3, :3] = np.stack([np.cross(up, forward), up, forward])
    return lab


@pytest.mark.parametrize(
    ("azimuth", "kind", "planes"),
    [
        (0.0, "front", ["frontal", "transverse"]),
        (24.0, "front", ["frontal", "transverse"]),
        (26.0, "oblique", ["frontal", "transverse"]),
        (64.0, "oblique", ["frontal", "transverse"]),
        (66.0, "side", ["sagittal"]),
        (90.0, "side", ["sagittal"]),
        (120.0, "oblique", ["frontal", "transverse"]),
        (160.0, "back", ["frontal", "transverse"]),
    ],
)
def test_the_view_follows_the_walking_direction_against_the_camera(azimuth, kind, planes):
    pelvis = np.array([[0.0, 0.3, 4.0], [np.nan, np.nan, np.nan], [0.0, 0.2, 4.0]])  # NaN: no subject
    measured = view_azimuth_deg(_lab(azimuth), pelvis)
    assert measured == pytest.approx(azimuth, abs=1e-6)
    assert view_of_walk(measured) == {"azimuth_deg": measured, "kind": kind, "planes_shown": planes}


def test_walking_left_or_right_of_the_camera_is_the_same_view():
    pelvis = np.array([[0.0, 0.0, 4.0]])
    assert view_azimuth_deg(_lab(70.0), pelvis) == pytest.approx(view_azimuth_deg(_lab(-70.0), pelvis))


def test_a_walker_crossing_a_side_view_is_seen_from_the_side_over_the_clip():
    # the rays to the walker sweep +-30 deg about the optical axis as it crosses the frame: each
    # frame's azimuth is 60 to 120 deg, their median 90
    sweep = np.radians(np.linspace(-30.0, 30.0, 61))
    pelvis = 4.0 * np.stack([np.sin(sweep), np.zeros_like(sweep), np.cos(sweep)], axis=1)
    assert view_azimuth_deg(_lab(90.0), pelvis) == pytest.approx(90.0, abs=1e-6)
