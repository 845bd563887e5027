"""The camera's view of the walk and the anatomical planes it shows (DESIGN.md section 6).

The view is the azimuth, in the ground plane, from the walking direction to the direction from the
walker to the camera: 0 deg walking toward the camera, 90 seen from the side, 180 walking away. A
plane's motion shows best where the plane faces the camera: the sagittal from the side, the frontal
from the front or back; the transverse rotation shows as the changing widths of the shoulders and
hips, which a side view does not see. As the issues measure them (and the bench ranks them), the
sagittal figures come from side views and the frontal and transverse ones (the symmetry index
among them) from front, back or oblique views; on the bench's side clips the lumbar transverse ROM
is off by about 8 deg, on its oblique ones the sagittal by 3.1 against 1.4 from the side (README).
"""

from __future__ import annotations

import numpy as np

# Within this of 90 deg the view is a side view: the back shows in profile (as in spine.morphology);
# within it of 0 or 180 deg a front or back view.
VIEW_WITHIN_DEG = 25.0
PLANES_SHOWN = {
    "side": ("sagittal",),
    "oblique": ("frontal", "transverse"),
    "front": ("frontal", "transverse"),
    "back": ("frontal", "transverse"),
}


def view_azimuth_deg(world_from_camera: np.ndarray, pelvis_camera_m: np.ndarray) -> float:
    """Median over frames of the view's azimuth (degrees, 0 to 180; see the module docstring).

    Args:
        world_from_camera: (4, 4) the lab frame (rows of its rotation: lab x, up, walking direction,
            in camera coordinates); pelvis_camera_m: (T, 3) the walker's pelvis (camera frame;
            rows with NaN are left out).
    """
    lateral, _, forward = np.asarray(world_from_camera, dtype=np.float64)[:3, :3]
    to_camera = -np.asarray(pelvis_camera_m, dtype=np.float64)
    to_camera = to_camera[np.isfinite(to_camera).all(axis=1)]
    return float(np.median(np.degrees(np.arctan2(np.abs(to_camera @ lateral), to_camera @ forward))))


def view_of_walk(azimuth_deg: float) -> dict:
    """report.json's ``view`` block: ``azimuth_deg``, ``kind`` (side, oblique, front or back) and
    ``planes_shown`` (the anatomical planes whose motion that view shows)."""
    if abs(azimuth_deg - 90.0) <= VIEW_WITHIN_DEG:
        kind = "side"
    elif azimuth_deg <= VIEW_WITHIN_DEG:
        kind = "front"
    elif azimuth_deg >= 180.0 - VIEW_WITHIN_DEG:
        kind = "back"
    else:
        kind = "oblique"
    return {"azimuth_deg": azimuth_deg, "kind": kind, "planes_shown": list(PLANES_SHOWN[kind])}
