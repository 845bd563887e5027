"""The sagittal spine profile and the vertebra chain it draws inside a body (shared by synth and pipeline).

Profile (REFERENCES.md section 2). Tangent angles phi (from vertical, positive leaning anteriorly
going up) at the 19 vertebrae S1, L5..L1, T12..T1, C7:
- phi(S1) is the sacral slope (the S1 endplate's angle to the horizontal);
- lumbar lordosis LL = phi(S1) - phi(L1), spread over the five lumbar joints with L4-S1 taking
  70.8% (PMC6680033);
- thoracic kyphosis TK = phi(T1) - phi(T12), spread over T12..T1 with a mid-thoracic peak;
- T12 continues L1, and C7 leans 5 deg back from T1 (start of the cervical lordosis).
Segment lengths are typical vertebral body plus disc heights (lumbar about 37 mm, thoracic 18 to
30 mm); only their ratios matter because the chain is scaled to the trunk.

Placement: the chain runs from S1 to C7 inside the body, S1 at the height of the hip joints plus
5.5% of stature and C7 at the base of the neck, each at an anatomical depth in front of the back
surface of the mesh (vertebral body centres: about 70 mm at S1 and 55 mm at C7 for a 1.70 m adult,
scaled with stature; REFERENCES.md section 2 gives skin to spinous process 23 to 37 mm and to the
L4 transverse process 69 mm); a 2D similarity about S1 maps the drawn curve onto these two
anchors, which keeps lordosis and kyphosis and sets the final sacral slope.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# lengths (mm) of the segments S1->L5, L5->L4, ..., T1->C7
SEGMENT_MM = np.array(
    [38, 38, 37, 36, 34, 30, 28, 27, 26, 25, 24, 23, 22, 21, 20, 20, 20, 18], dtype=np.float64
)
# shares of the lordosis per lumbar joint (S1->L5 first): L4-S1 70.8% of the total
LORDOSIS_SHARES = np.array([0.40, 0.308, 0.14, 0.09, 0.062])
KYPHOSIS_SHARES = (
    np.sin(np.pi * (np.arange(11) + 0.5) / 11) / np.sin(np.pi * (np.arange(11) + 0.5) / 11).sum()
)
REFERENCE_STATURE_M = 1.70
S1_ABOVE_HIPS_PER_STATURE = 0.055
S1_DEPTH_M, C7_DEPTH_M = 0.070, 0.055
C7_EXTENSION_DEG = 5.0


@dataclass(frozen=True)
class SpineProfile:
    """The drawn sagittal shape (degrees)."""

    lordosis_deg: float
    kyphosis_deg: float
    sacral_slope_deg: float


@dataclass(frozen=True)
class RestSpine:
    """The vertebra chain in the static posture, in the body frame (SMPL axes, metres).

    origins_m: (19, 3) vertebral body centres on the curve, S1 first.
    rotations: (19, 3, 3) curve frames (columns: x left, y tangent up, z anterior).
    profile: lordosis, kyphosis and the sacral slope after placement.
    """

    origins_m: np.ndarray
    rotations: np.ndarray
    profile: SpineProfile


def tangent_angles_deg(profile: SpineProfile) -> np.ndarray:
    """(19,) tangent angles from vertical (positive anterior), S1 first."""
    steps = np.concatenate(
        [
            -profile.lordosis_deg * LORDOSIS_SHARES,  # S1 -> L1
            [0.0],  # L1 -> T12
            profile.kyphosis_deg * KYPHOSIS_SHARES,  # T12 -> T1
            [-C7_EXTENSION_DEG],  # T1 -> C7
        ]
    )
    return profile.sacral_slope_deg + np.concatenate([[0.0], np.cumsum(steps)])


def curve_2d(phi_rad: np.ndarray) -> np.ndarray:
    """(19, 2) points (up, anterior) of the chain from S1 at the origin, unit lengths in mm."""
    mid = 0.5 * (phi_rad[:-1] + phi_rad[1:])
    steps = SEGMENT_MM[:, None] * np.stack([np.cos(mid), np.sin(mid)], axis=1)
    return np.vstack([[0.0, 0.0], np.cumsum(steps, axis=0)])


def frames_from_tangents(phi_rad: np.ndarray) -> np.ndarray:
    """(N, 3, 3) curve frames for sagittal tangent angles: x left, y = (0, cos, sin), z = x cross y."""
    c, s = np.cos(phi_rad), np.sin(phi_rad)
    zero, one = np.zeros_like(c), np.ones_like(c)
    x = np.stack([one, zero, zero], -1)
    y = np.stack([zero, c, s], -1)
    z = np.stack([zero, -s, c], -1)
    return np.stack([x, y, z], axis=-1)


def place_spine(profile: SpineProfile, s1_anchor_m: np.ndarray, c7_anchor_m: np.ndarray) -> RestSpine:
    """Map the drawn curve onto the S1 and C7 anchors (sagittal plane x = anchors' x) by a 2D similarity."""
    phi = np.radians(tangent_angles_deg(profile))
    curve = curve_2d(phi)
    target = np.array([c7_anchor_m[1] - s1_anchor_m[1], c7_anchor_m[2] - s1_anchor_m[2]])
    end = curve[-1]
    scale = np.linalg.norm(target) / np.linalg.norm(end)
    turn = np.arctan2(target[1], target[0]) - np.arctan2(end[1], end[0])
    c, s = np.cos(turn), np.sin(turn)
    placed = scale * curve @ np.array([[c, s], [-s, c]])  # rotate (up, anterior) by `turn`
    origins = np.stack(
        [np.full(len(curve), s1_anchor_m[0]), s1_anchor_m[1] + placed[:, 0], s1_anchor_m[2] + placed[:, 1]], 1
    )
    final_phi = phi + turn
    placed_profile = SpineProfile(profile.lordosis_deg, profile.kyphosis_deg, float(np.degrees(final_phi[0])))
    return RestSpine(origins, frames_from_tangents(final_phi), placed_profile)


def back_surface_z(
    vertices_m: np.ndarray, height_m: float, half_band_m: float = 0.015, half_width_m: float = 0.03
) -> tuple[float, float]:
    """(back, front) z of rest vertices (SMPL axes) at one height: by default the midsagittal strip
    (|x| < 3 cm); a wider ``half_width_m`` gives the outline a side view sees of that width."""
    strip = (np.abs(vertices_m[:, 0]) < half_width_m) & (np.abs(vertices_m[:, 1] - height_m) < half_band_m)
    if not strip.any():
        raise ValueError(f"no body surface at height {height_m:.3f} m")
    return float(vertices_m[strip, 2].min()), float(vertices_m[strip, 2].max())


def spine_anchors(
    rest_vertices_m: np.ndarray, hips_centre_m: np.ndarray, neck_base_m: np.ndarray, stature_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """S1 and C7 anchor points (SMPL axes) from the rest mesh, the hip joints' midpoint and the neck base."""
    scale = stature_m / REFERENCE_STATURE_M
    s1_height = hips_centre_m[1] + S1_ABOVE_HIPS_PER_STATURE * stature_m
    s1 = np.array([0.0, s1_height, back_surface_z(rest_vertices_m, s1_height)[0] + S1_DEPTH_M * scale])
    c7 = np.array(
        [0.0, neck_base_m[1], back_surface_z(rest_vertices_m, neck_base_m[1])[0] + C7_DEPTH_M * scale]
    )
    return s1, c7
