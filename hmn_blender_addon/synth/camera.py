"""A phone-like pinhole camera looking at the walk from the side, obliquely (45 deg) or from the front.

Intrinsics: a phone's main camera has a 24 to 28 mm (35 mm equivalent) lens, i.e. a horizontal field
of view of about 65 to 74 deg; the principal point is the image centre and pixels are square.
Extrinsics (``world_to_camera``): OpenCV's convention (x right, y down, z forward) from the lab frame
of :mod:`.gait` (x left of the walker, y up, z the direction of walking). The camera stands at phone
height (1.2 to 1.6 m) at the distance where the whole walk fits the frame, at least 3 m from the
middle of the walk; the front view looks at the walker coming toward it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..metrics.angles import Y_UP

VIEWS = ("side", "oblique", "front")
VIEW_AZIMUTH_DEG = {"side": 90.0, "oblique": 45.0, "front": 0.0}  # from straight ahead of the walker
FOCAL_35MM_RANGE = (24.0, 28.0)
CAMERA_HEIGHT_RANGE_M = (1.2, 1.6)
MIN_DISTANCE_M = 3.0  # from the middle of the walk; no body point comes within 0.5 m less


@dataclass(frozen=True)
class Camera:
    """K: (3, 3) pixels; world_to_camera: (4, 4); width, height: pixels."""

    K: np.ndarray
    world_to_camera: np.ndarray
    width: int
    height: int

    @property
    def position_m(self) -> np.ndarray:
        rotation, translation = self.world_to_camera[:3, :3], self.world_to_camera[:3, 3]
        return -rotation.T @ translation


def look_at(eye_m: np.ndarray, target_m: np.ndarray, up: np.ndarray = Y_UP) -> np.ndarray:
    """(4, 4) OpenCV world-to-camera transform of a camera at ``eye`` looking at ``target``."""
    forward = (target_m - eye_m) / np.linalg.norm(target_m - eye_m)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])
    out = np.eye(4)
    out[:3, :3] = rotation
    out[:3, 3] = -rotation @ eye_m
    return out


def project(points_m: np.ndarray, camera: Camera) -> np.ndarray:
    """(..., 3) world points -> (..., 2) pixel coordinates."""
    cam = to_camera(points_m, camera)
    uvw = cam @ camera.K.T
    return uvw[..., :2] / uvw[..., 2:3]


def to_camera(points_m: np.ndarray, camera: Camera) -> np.ndarray:
    """(..., 3) world points -> (..., 3) camera-frame points (OpenCV axes, metres)."""
    return points_m @ camera.world_to_camera[:3, :3].T + camera.world_to_camera[:3, 3]


def make_camera(
    view: str, body_points_m: np.ndarray, width: int, height: int, rng: np.random.Generator
) -> Camera:
    """The camera for ``view`` of a walk along +z whose body points over the clip are ``(N, 3)``.

    The camera looks at the middle of the points at half their height and backs off (in 10 cm steps)
    until every point projects at least 4% of the image size inside the frame.
    """
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}")
    focal_px = width * rng.uniform(*FOCAL_35MM_RANGE) / 36.0
    K = np.array([[focal_px, 0.0, width / 2], [0.0, focal_px, height / 2], [0.0, 0.0, 1.0]])
    eye_height = rng.uniform(*CAMERA_HEIGHT_RANGE_M)
    low, high = body_points_m.min(axis=0), body_points_m.max(axis=0)
    target = np.array([0.5 * (low[0] + high[0]), 0.5 * high[1], 0.5 * (low[2] + high[2])])
    azimuth = np.radians(VIEW_AZIMUTH_DEG[view] + rng.uniform(-5.0, 5.0))
    sign = 1.0 if rng.random() < 0.5 else -1.0  # the walker's left or right side, by the seed
    direction = np.array([sign * np.sin(azimuth), 0.0, np.cos(azimuth)])
    margin = 0.04 * np.array([width, height])
    for distance in np.arange(MIN_DISTANCE_M, 40.0, 0.1):
        eye = target + distance * direction
        eye[1] = eye_height
        camera = Camera(K=K, world_to_camera=look_at(eye, target), width=width, height=height)
        depth = to_camera(body_points_m, camera)[:, 2]
        uv = project(body_points_m, camera)
        if (
            depth.min() > MIN_DISTANCE_M - 0.5
            and (uv >= margin).all()
            and (uv <= [width, height] - margin).all()
        ):
            return camera
    raise ValueError("the walk does not fit the camera's view")
