"""The subject's static spine morphology: lordosis, kyphosis and sacral slope, and the rest chain.

Surface-topography style (Drerup & Hierholzer 1994; REFERENCES.md section 2): the spine lies at an
anatomical depth in front of the back surface, so the back's midsagittal profile, moved forward by
that depth (:data:`.profile.S1_DEPTH_M` at S1 to :data:`.profile.C7_DEPTH_M` at C7, scaled with
stature), gives the spinal curve between the S1 and C7 levels. The profile of :mod:`.profile`
(lordosis and kyphosis spread over the levels) is fitted to that curve in the least-squares sense
with its ends on the curve's ends, which reads the angles from the whole curve rather than from
noisy end tangents.

Where the back comes from, in order:
- ``"mask_contour"``: frames that show the back in profile (the subject's mediolateral axis within
  :data:`PROFILE_MAX_ANGLE_DEG` of the viewing ray) at least :data:`MIN_PROFILE_FRAMES` times and
  in at least :data:`MIN_PROFILE_SHARE` of the frames with the subject: in each, the person mask
  is sampled along horizontal lines behind the fitted pelvis, in the sagittal plane through it
  (lab up, walking direction); the back is where the mask ends. Over the frames a low percentile
  per height keeps the back and drops an arm swinging behind it. The window's lower end, S1, is
  the fitted body's own S1 level above its fitted pelvis; its upper end, C7, is slid onto the
  fitted body's own back by the nape above it (:func:`register_nape`: matched within
  +-:data:`REGISTER_REACH_M` against the body's trunk outline, which the mask shows), since the
  fitted body's proportions place C7 off by centimetres; the observed levels between are
  stretched onto the body's S1..C7 levels, and the curvature between is read from the mask.
  (Sliding the whole window by the buttocks below S1 and the nape above C7 together read the
  lordosis 12.9 deg high on average over the bench's 26 side clips, and the sacral slope 12.8 deg
  high: the rendered walkers' buttocks are shaped unlike the fitted body's.)
  The mask shows the trunk's outline, not its midline: the buttocks and the shoulder blades stand
  out behind the spine, which deepens the outline's lordosis and kyphosis (by about 5 deg each on
  the fitted bodies and on the rendered walkers). So, once the levels are placed, the body's own
  midline-minus-outline difference at each level turns the observed outline into a midline.
- ``"body_surface"``: otherwise (front or oblique views), the fitted body's own rest back surface;
  also where the mask's reading is no back's (lordosis or kyphosis outside
  :data:`PLAUSIBLE_PROFILE_DEG`: long hair over the upper back, a bag, a coat), the rejected
  reading kept in the report.

The rest chain is then :func:`.profile.place_spine` of the measured lordosis and kyphosis between
the fitted body's own S1 and C7 anchors (:func:`.profile.spine_anchors`), which sets the sacral slope.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import map_coordinates
from scipy.optimize import least_squares

from ..body.model import BodyModel
from ..keypoints import MASK_SHAPE, Keypoints
from ..skeleton import SMPL_JOINT_INDEX
from .dynamic import shaped_rest
from .profile import (
    C7_DEPTH_M,
    REFERENCE_STATURE_M,
    S1_DEPTH_M,
    RestSpine,
    SpineProfile,
    back_surface_z,
    place_spine,
    spine_anchors,
)

PROFILE_MAX_ANGLE_DEG = 25.0  # side views reach about 30 deg at the frame edges, oblique ones 26 to 56
MIN_PROFILE_FRAMES = 10
# An oblique view shows the back in profile only near the frame's edge, where the outline is not
# the midsagittal back: the bench's side clips 78 to 90 of their 90 frames, the oblique ones 0 to
# 12 (31 for a tall walker fitted at his true height, which read a kyphosis of 54 deg for a true 31)
MIN_PROFILE_SHARE = 0.5
LEVEL_STEP_M = 0.005  # between sampled levels
REGISTER_REACH_M = 0.08  # how far the observed C7 level may slide onto the body's (see register_nape)
CONTOUR_STEP_M = 0.002
CONTOUR_REACH_M = 0.40  # how far behind the pelvis the mask is sampled
PROFILE_FRAME_CHUNK = 8  # frames whose back contour is sampled at a time (see mask_back_depths)
BACK_PERCENTILE = 25.0  # an arm swinging behind the back only ever adds to the silhouette
INITIAL_PROFILE_DEG = (45.0, 40.0)
# the trunk's outline: rest vertices within this share of the shoulder joints' half distance (the
# rest pose's arms are no part of the back)
TRUNK_HALF_WIDTH_SHARE = 0.9
# Lordosis and kyphosis a back can show. Standing lordosis 49.8 +- 11.2 deg (radiographs, n = 627),
# kyphosis 42.8 +- 8.8 (skin surface, men; REFERENCES.md section 2): 0 and 90 deg lie 3.6 SD or
# more from either mean. The real footage in ../shared (long hair down the back) reads a lordosis
# of -7 deg (-30, the profile fit's bound, with the window slid by both its margins).
PLAUSIBLE_PROFILE_DEG = (0.0, 90.0)


@dataclass(frozen=True)
class SpineMorphology:
    """The static spine of one subject.

    - ``profile``: lumbar lordosis, thoracic kyphosis and sacral slope (degrees).
    - ``rest``: the vertebra chain in the shaped body's rest frame (SMPL axes, metres).
    - ``source``: "mask_contour" or "body_surface"; ``profile_frames``: frames used (mask only).
    - ``curve_m`` (N, 2): the measured spinal curve (height, anterior) in the rest frame, for plots.
    - ``rejected_mask_profile``: the mask's reading where it was not plausible, else None.
    """

    profile: SpineProfile
    rest: RestSpine
    source: str
    profile_frames: int
    curve_m: np.ndarray
    rejected_mask_profile: SpineProfile | None = None

    def report(self) -> dict:
        """The ``spine_morphology`` block of report.json (plus its source)."""
        return {
            "lumbar_lordosis_deg": self.profile.lordosis_deg,
            "thoracic_kyphosis_deg": self.profile.kyphosis_deg,
            "sacral_slope_deg": self.profile.sacral_slope_deg,
            "source": self.source,
            "profile_frames": self.profile_frames,
            "rejected_mask_reading": None
            if self.rejected_mask_profile is None
            else {
                "lumbar_lordosis_deg": self.rejected_mask_profile.lordosis_deg,
                "thoracic_kyphosis_deg": self.rejected_mask_profile.kyphosis_deg,
            },
        }


def depth_below_back_m(
    heights_m: np.ndarray, s1_height_m: float, c7_height_m: float, stature_m: float
) -> np.ndarray:
    """(N,) anatomical depth of the vertebral body centres in front of the back, linear from S1 to C7."""
    share = np.clip((heights_m - s1_height_m) / (c7_height_m - s1_height_m), 0.0, 1.0)
    return (S1_DEPTH_M + share * (C7_DEPTH_M - S1_DEPTH_M)) * stature_m / REFERENCE_STATURE_M


def profile_of_back(
    heights_m: np.ndarray, back_z_m: np.ndarray, s1_m: np.ndarray, c7_m: np.ndarray, stature_m: float
) -> tuple[SpineProfile, np.ndarray]:
    """The spinal curve an anatomical depth in front of a back, and the profile that best follows it.

    Args:
        heights_m: (N,) increasing heights from the S1 anchor's to the C7 anchor's; back_z_m: (N,)
            the back's anterior coordinate there; s1_m, c7_m: (3,) the anchors; stature_m: for the depth.
    Returns the profile (:func:`profile_from_curve`) and the curve (N, 2): (height, anterior).
    """
    anterior = back_z_m + depth_below_back_m(heights_m, s1_m[1], c7_m[1], stature_m)
    curve = np.stack([heights_m, anterior], axis=1)
    return profile_from_curve(heights_m, anterior), curve


def rest_back_profile(
    rest_vertices_m: np.ndarray, s1_m: np.ndarray, c7_m: np.ndarray, stature_m: float
) -> tuple[SpineProfile, np.ndarray]:
    """:func:`profile_of_back` of a rest body's own back (``back_surface_z``), every
    :data:`LEVEL_STEP_M` from the S1 anchor up to the C7 anchor (SMPL axes)."""
    heights = s1_m[1] + LEVEL_STEP_M * np.arange(round((c7_m[1] - s1_m[1]) / LEVEL_STEP_M) + 1)
    back = np.array([back_surface_z(rest_vertices_m, height)[0] for height in heights])
    return profile_of_back(heights, back, s1_m, c7_m, stature_m)


def profile_from_curve(heights_m: np.ndarray, anterior_m: np.ndarray) -> SpineProfile:
    """Lordosis and kyphosis of the :mod:`.profile` chain that best follows a sagittal spinal curve.

    Args:
        heights_m: (N,) increasing heights from the S1 level to the C7 level; anterior_m: (N,) the
            curve's anterior coordinate there (any origin).
    Returns the profile with the sacral slope the fitted chain takes between the curve's ends.
    """
    s1 = np.array([0.0, heights_m[0], anterior_m[0]])
    c7 = np.array([0.0, heights_m[-1], anterior_m[-1]])

    def residual(angles_deg: np.ndarray) -> np.ndarray:
        chain = place_spine(SpineProfile(angles_deg[0], angles_deg[1], 0.0), s1, c7).origins_m
        return chain[:, 2] - np.interp(chain[:, 1], heights_m, anterior_m)

    fit = least_squares(residual, INITIAL_PROFILE_DEG, bounds=([-30.0, -30.0], [120.0, 120.0]))
    return place_spine(SpineProfile(*fit.x, 0.0), s1, c7).profile


def profile_frame_mask(
    pelvis_camera_m: np.ndarray, lateral_camera: np.ndarray, present: np.ndarray
) -> np.ndarray:
    """(T,) bool: frames whose view shows the back in profile (mediolateral axis near the viewing ray)."""
    rays = pelvis_camera_m / np.linalg.norm(pelvis_camera_m, axis=1, keepdims=True)
    return present & (np.abs(rays @ lateral_camera) > np.cos(np.radians(PROFILE_MAX_ANGLE_DEG)))


def sample_masks(keypoints: Keypoints, frames: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """(F, ...) person-mask values (0..1, bilinear in the stored crop) at pixels (F, ..., 2) of ``frames``."""
    boxes = keypoints.mask_boxes_px[frames].astype(np.float64)  # (F, 4)
    crops = np.unpackbits(keypoints.masks_packed[frames], axis=1)[:, : MASK_SHAPE[0] * MASK_SHAPE[1]]
    crops = crops.reshape(len(frames), *MASK_SHAPE).astype(np.float64)
    extra = (1,) * (pixels.ndim - 2)
    x0, y0, x1, y1 = (boxes[:, k].reshape(-1, *extra) for k in range(4))
    # the crop spans the box's pixels [x0, x1) x [y0, y1), pixel centres at integer coordinates
    cols = (pixels[..., 0] - x0 + 0.5) / np.maximum(x1 - x0, 1e-6) * MASK_SHAPE[1] - 0.5
    rows = (pixels[..., 1] - y0 + 0.5) / np.maximum(y1 - y0, 1e-6) * MASK_SHAPE[0] - 0.5
    index = np.broadcast_to(np.arange(len(frames)).reshape(-1, *extra), rows.shape)
    return map_coordinates(crops, [index, rows, cols], order=1, mode="constant", cval=0.0)


def mask_back_depths(
    keypoints: Keypoints,
    frames: np.ndarray,
    pelvis_camera_m: np.ndarray,
    up_camera: np.ndarray,
    forward_camera: np.ndarray,
    camera_K: np.ndarray,
    heights_m: np.ndarray,
) -> np.ndarray:
    """(F, N) distance (m) behind the pelvis at which the person mask ends, per frame and height.

    Args:
        frames: (F,) frame indices; pelvis_camera_m: (F, 3) the pelvis joint in those frames;
        up_camera, forward_camera: (3,) lab up and walking direction in the camera frame;
        heights_m: (N,) heights above the pelvis joint.
    """
    behind = np.arange(0.0, CONTOUR_REACH_M, CONTOUR_STEP_M)
    offsets = heights_m[:, None, None] * up_camera - behind[None, :, None] * forward_camera  # (N, D, 3)
    depths = np.empty((len(frames), len(heights_m)))
    # a few frames at a time: the (F, N, D) samples take about 3 MB a frame
    for start in range(0, len(frames), PROFILE_FRAME_CHUNK):
        chunk = slice(start, start + PROFILE_FRAME_CHUNK)
        points = pelvis_camera_m[chunk, None, None] + offsets  # (F, N, D, 3)
        uvw = points @ np.asarray(camera_K, dtype=np.float64).T
        inside = sample_masks(keypoints, frames[chunk], uvw[..., :2] / uvw[..., 2:3]) > 0.5
        run = np.cumprod(inside, axis=-1).sum(axis=-1)  # samples inside before the first outside
        depths[chunk] = np.where(run > 0, run * CONTOUR_STEP_M, np.nan)
    return depths


def _rest_geometry(
    rest_vertices_m: np.ndarray, rest_joints_m: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    hips = 0.5 * (rest_joints_m[SMPL_JOINT_INDEX["left_hip"]] + rest_joints_m[SMPL_JOINT_INDEX["right_hip"]])
    stature = float(rest_vertices_m[:, 1].max() - rest_vertices_m[:, 1].min())
    s1, c7 = spine_anchors(rest_vertices_m, hips, rest_joints_m[SMPL_JOINT_INDEX["neck"]], stature)
    return s1, c7, stature


def rest_backs(
    rest_vertices_m: np.ndarray, rest_joints_m: np.ndarray, heights_m: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The rest body's back z at (N,) heights (SMPL axes): (N,) along its midline, (N,) along the
    outline of its trunk (:data:`TRUNK_HALF_WIDTH_SHARE`), which a side view's mask shows."""
    half_width = TRUNK_HALF_WIDTH_SHARE * abs(rest_joints_m[SMPL_JOINT_INDEX["left_shoulder"], 0])
    midline = np.array([back_surface_z(rest_vertices_m, h)[0] for h in heights_m])
    outline = np.array([back_surface_z(rest_vertices_m, h, half_width_m=half_width)[0] for h in heights_m])
    return midline, outline


def spine_morphology(
    body: BodyModel,
    betas: np.ndarray,
    transl: np.ndarray,
    world_from_camera: np.ndarray,
    camera_K: np.ndarray,
    keypoints: Keypoints | None,
) -> SpineMorphology:
    """The subject's morphology (see the module docstring).

    Args:
        body, betas (B,): the fitted body; transl: (T, 3) its SMPL translation (camera frame, metres).
        world_from_camera: (4, 4) the lab frame (rows of its rotation: lab x, up, walking direction).
        camera_K: (3, 3); keypoints: the clip's keypoints with person masks (None: body surface only).
    """
    rest_vertices_m, rest_joints_m = shaped_rest(body, betas)
    pelvis_camera_m = np.asarray(transl, dtype=np.float64) + rest_joints_m[0]
    s1, c7, stature = _rest_geometry(rest_vertices_m, rest_joints_m)
    reach = round(REGISTER_REACH_M / LEVEL_STEP_M)
    levels = round((c7[1] - s1[1]) / LEVEL_STEP_M) + 1
    # the window S1..C7, a margin of `reach` levels on each side and as much again to slide in
    wide = s1[1] + LEVEL_STEP_M * np.arange(-2 * reach, levels + 2 * reach)
    body_midline, body_outline = rest_backs(rest_vertices_m, rest_joints_m, wide[reach:-reach])
    lateral, up, forward = np.asarray(world_from_camera, dtype=np.float64)[:3, :3]
    frames = np.zeros(0, dtype=int)
    if keypoints is not None:
        present = keypoints.present & np.isfinite(keypoints.mask_boxes_px).all(axis=1)
        frames = np.nonzero(profile_frame_mask(pelvis_camera_m, lateral, present))[0]
        if len(frames) < MIN_PROFILE_SHARE * np.sum(present):
            frames = frames[:0]
    heights = wide[2 * reach : 2 * reach + levels]
    rejected = found = None
    if len(frames) >= MIN_PROFILE_FRAMES:
        depths = mask_back_depths(
            keypoints, frames, pelvis_camera_m[frames], up, forward, camera_K, wide - rest_joints_m[0, 1]
        )
        if np.isfinite(depths).any(axis=0).all():  # the mask shows the back at every level
            observed = rest_joints_m[0, 2] - np.nanpercentile(depths, BACK_PERCENTILE, axis=0)
            midline_correction = (body_midline - body_outline)[reach : reach + levels]
            nape_shift = register_nape(observed, body_outline, reach)
            # the observed levels from the body's S1 to the registered C7, onto the body's S1..C7
            observed_levels = np.linspace(2 * reach, 2 * reach + levels - 1 + nape_shift, levels)
            back = np.interp(observed_levels, np.arange(len(observed)), observed) + midline_correction
            reading = profile_of_back(heights, back, s1, c7, stature)
            if profile_is_plausible(reading[0]):
                found = reading
            else:
                rejected = reading[0]
    if found is not None:
        (measured, curve), source, rejected = found, "mask_contour", None
    else:
        frames, source = frames[:0], "body_surface"
        measured, curve = profile_of_back(heights, body_midline[reach : reach + levels], s1, c7, stature)
    rest = place_spine(measured, s1, c7)
    return SpineMorphology(rest.profile, rest, source, len(frames), curve, rejected)


def profile_is_plausible(profile: SpineProfile) -> bool:
    """Whether a back can show this lordosis and kyphosis (:data:`PLAUSIBLE_PROFILE_DEG`)."""
    low, high = PLAUSIBLE_PROFILE_DEG
    return low <= profile.lordosis_deg <= high and low <= profile.kyphosis_deg <= high


def register_nape(observed: np.ndarray, template: np.ndarray, reach: int) -> int:
    """The shift (in levels, within +-``reach``) that lays the body's back above C7 (the nape) onto
    the observed one, compared without its mean offset, so that neither the back's distance nor the
    curvature below it, the measurement, steers it.

    Args:
        observed: (N + 4 reach,) observed back over the window of N levels (S1..C7) with 2 ``reach``
            levels on each side; template: (N + 2 reach,) the body's own back (its trunk outline,
            as the mask shows it) over the window with ``reach`` levels on each side.
    """
    window = len(template) - 2 * reach
    nape = template[reach + window :]
    costs = []
    for shift in range(-reach, reach + 1):
        start = 2 * reach + window + shift
        difference = observed[start : start + reach] - nape
        costs.append(np.sum((difference - difference.mean()) ** 2))
    return int(np.argmin(costs)) - reach
