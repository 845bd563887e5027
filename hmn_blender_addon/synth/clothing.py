"""Skin-tight garment regions on the body mesh (colour only: nothing hides the trunk outline).

Regions from the rest pose (SMPL axes, in the Anny body's own proportions), per face centroid:
shorts from the waist (hips + 10% of the hip-to-neck height) down to 45% of the way to the knees,
and a sleeveless top from the waist to just below the neck, both within the trunk's width (the
A-pose hands beside the hips stay bare).
"""

from __future__ import annotations

import numpy as np

from ..skeleton import SMPL_JOINT_INDEX

SKIN, SHORTS, TOP = 0, 1, 2


def garment_regions(rest_vertices_m: np.ndarray, faces: np.ndarray, rest_joints_m: np.ndarray) -> np.ndarray:
    """(F,) int8 region per face: :data:`SKIN`, :data:`SHORTS` or :data:`TOP`."""
    centroids = rest_vertices_m[faces].mean(axis=1)
    joint = {
        name: rest_joints_m[SMPL_JOINT_INDEX[name]]
        for name in ("left_hip", "left_knee", "neck", "left_shoulder")
    }
    hip_y, knee_y, neck_y = joint["left_hip"][1], joint["left_knee"][1], joint["neck"][1]
    waist_y = hip_y + 0.10 * (neck_y - hip_y)
    x, y = np.abs(centroids[:, 0]), centroids[:, 1]
    shorts = (y <= waist_y) & (y >= hip_y - 0.45 * (hip_y - knee_y)) & (x <= abs(joint["left_hip"][0]) + 0.12)
    top = (y > waist_y) & (y <= neck_y - 0.03) & (x <= 0.9 * abs(joint["left_shoulder"][0]))
    regions = np.full(len(faces), SKIN, dtype=np.int8)
    regions[shorts] = SHORTS
    regions[top] = TOP
    return regions
