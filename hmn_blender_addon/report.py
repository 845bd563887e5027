"""Low-back-pain metrics from the dynamic spine, reconstruction quality, and the run's reports.

Metrics follow DESIGN.md section 6 through :mod:`.metrics` (the same functions make the synthetic
truth): the lab frame comes from the fitted ground plane (y up) and the pelvis's net horizontal
travel (z); heel strikes (Zeni) from the fitted joints in that frame; per-cycle lumbar ROM (L1 on
S1), pelvic ranges (S1 in the lab) and Robinson's symmetry indices. A clip without a complete
cycle is measured over the whole clip (``"source": "whole_clip"``); one without a step (heel
strikes of both feet) holds less than half a cycle and gets an :class:`..errors.HMNError`.

Reports (section 10), each written atomically: ``report.json``, ``report.csv`` (the JSON
flattened to ``key,value`` rows, one per number) and ``plots/*.png`` (matplotlib's Agg canvas,
no pyplot state): angle curves per cycle with mean +- SD bands and the normative band where
REFERENCES.md holds a verified one, the sagittal spine profile, and the symmetry chart.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .atomic import atomic_path, write_text_atomic
from .body.model import BodyModel, body_forward
from .errors import HMNError
from .keypoints import Keypoints
from .metrics.accuracy import psnr_from_mse_db, silhouette_iou
from .metrics.angles import lab_rotation, lumbar_angles
from .metrics.cycles import gait_cycles, heel_strikes_from_joints, walk_metrics
from .normative import NORMATIVE_ROM_DEG, SYMMETRY_CUTOFF_PCT
from .skeleton import VERTEBRA_NAMES
from .spine.dynamic import DynamicSpine
from .spine.morphology import SpineMorphology

PLANES = {
    "lumbar_rom_deg": ("sagittal", "frontal", "transverse"),
    "pelvic_range_deg": ("tilt", "obliquity", "rotation"),
}
RENDER_MAX_WIDTH = 640  # masks are compared at most this wide
QUALITY_FRAMES = 30  # frames with the subject, evenly spread, that the silhouette scores use (~15 ms each)
METRIC_LEVELS = ("S1", "L1", "T1")  # the vertebrae section 6's metrics are read from
FRAME_CHUNK = 10  # meshes posed at a time: the model's temporaries are about 1.5 MB a frame


def world_from_camera(
    ground_normal: np.ndarray, ground_offset_m: float, pelvis_camera_m: np.ndarray
) -> np.ndarray:
    """(4, 4) lab frame from the camera frame: y the ground's up normal, z the pelvis's net horizontal
    travel, x = y cross z, origin the first pelvis position dropped onto the ground plane {n.p = offset}.

    Args:
        ground_normal: (3,) unit up normal in the camera frame; pelvis_camera_m: (T, 3).
    """
    normal = np.asarray(ground_normal, dtype=np.float64)
    axes = lab_rotation(np.asarray(pelvis_camera_m, dtype=np.float64), up=normal)  # columns x, y, z
    origin = pelvis_camera_m[0] - (normal @ pelvis_camera_m[0] - ground_offset_m) * normal
    out = np.eye(4)
    out[:3, :3] = axes.T
    out[:3, 3] = -axes.T @ origin
    return out


@dataclass(frozen=True)
class SpineMetrics:
    """The ``metrics`` block and what the plots need.

    metrics: {"cycles", "lumbar_rom_deg", "pelvic_range_deg", "symmetry_index_pct", "gait",
    "coordination_deg"} (section 10); heel_strikes: {"left": [...], "right": [...]} frames;
    cycles: [(start, end)] frames measured; lumbar_deg, pelvic_deg, thorax_deg: (T, 3) the angle
    curves (section 6's planes, degrees; the thorax's like the pelvis's, in the lab);
    relative_phase_deg: {"transverse", "frontal"}: (T,) thorax-pelvis |CRP| in degrees.
    """

    metrics: dict
    heel_strikes: dict[str, list[int]]
    cycles: list[tuple[int, int]]
    lumbar_deg: np.ndarray
    pelvic_deg: np.ndarray
    thorax_deg: np.ndarray
    relative_phase_deg: dict[str, np.ndarray]


def require_half_cycle(strikes: dict[str, list[int]], frames: int, source: str | os.PathLike) -> None:
    """Raise :class:`HMNError` unless the clip holds a step: heel strikes of both feet, or two of one."""
    if gait_cycles(strikes) or (strikes.get("left") and strikes.get("right")):
        return
    raise HMNError(
        source,
        f"less than half a gait cycle in {frames} frames (heel strikes: left {strikes.get('left', [])}, "
        f"right {strikes.get('right', [])}); film at least one full stride",
    )


def gait_scale(fitted_height_m: float, subject_height_m: float | None) -> tuple[float, str]:
    """(factor, source) of the gait markers' metric scale: the subject's height over the fitted
    body's stature when the height is given (within a few millimetres of 1, since the fit holds
    the stature there; this takes the rest), else the fitted shape's own scale."""
    if subject_height_m is None:
        return 1.0, "fitted_shape"
    return subject_height_m / fitted_height_m, "subject_height"


def lbp_metrics(
    spine: DynamicSpine,
    joints_m: np.ndarray,
    world_from_camera: np.ndarray,
    fps: float,
    source: str | os.PathLike = "clip",
    scale: tuple[float, str] = (1.0, "fitted_shape"),
) -> SpineMetrics:
    """Section 6's metrics of a dynamic spine (camera frame) and its fitted joints (T, 24, 3);
    ``scale`` is the gait markers' (factor, source) from :func:`gait_scale`."""
    rotation, offset = world_from_camera[:3, :3], world_from_camera[:3, 3]
    joints_lab = joints_m @ rotation.T.astype(joints_m.dtype)  # in the joints' precision (float32 in a run)
    joints_lab += offset.astype(joints_m.dtype)
    strikes = heel_strikes_from_joints(joints_lab, fps)
    require_half_cycle(strikes, len(joints_m), source)
    # the levels the metrics read: a long clip's frames of all 19 would be its largest array here
    levels = METRIC_LEVELS
    anatomical = rotation @ spine.rotations[:, [spine.names.index(name) for name in levels]]
    metrics, curves = walk_metrics(anatomical, joints_lab, strikes, fps, *scale, vertebra_names=levels)
    cycles = gait_cycles(strikes) or [(0, len(joints_m))]
    lumbar = np.degrees(lumbar_angles(anatomical, levels.index("S1"), levels.index("L1")))
    return SpineMetrics(
        metrics,
        strikes,
        cycles,
        lumbar,
        curves["pelvis_deg"],
        curves["thorax_deg"],
        curves["relative_phase_deg"],
    )


def body_masks(
    vertices_camera_m: np.ndarray, faces: np.ndarray, camera_K: np.ndarray, size: tuple[int, int]
) -> np.ndarray:
    """(T, H, W) bool silhouettes of (T, V, 3) meshes (camera frame) seen by ``camera_K``; size = (W, H).

    A pixel is in the silhouette when its centre lies in a projected triangle (see
    :func:`triangle_cover`). Every point of a closed mesh's silhouette lies under a triangle facing
    the camera and under one facing away, so the triangles of one winding in the image (the more
    numerous, which also serves an open patch facing one way) cover it: half the triangles.
    """
    width, height = size
    uvw = vertices_camera_m @ np.asarray(camera_K, dtype=np.float64).T
    pixels = uvw[..., :2] / uvw[..., 2:3]
    masks = np.zeros((len(vertices_camera_m), height, width), dtype=bool)
    for frame, points in enumerate(pixels):
        triangles = points[faces]  # (F, 3, 2)
        winding = triangle_winding(triangles)
        one_way = (
            winding > 0 if np.count_nonzero(winding > 0) >= np.count_nonzero(winding < 0) else winding < 0
        )
        masks[frame] = triangle_cover(triangles[one_way], width, height)
    return masks


def triangle_winding(triangles: np.ndarray) -> np.ndarray:
    """(F,) twice the signed areas of (F, 3, 2) triangles: > 0 for a clockwise turn a -> b -> c
    in image coordinates (y down), < 0 the other way, 0 for a degenerate triangle."""
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])


def triangle_cover(triangles: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W) bool: the pixels whose centres (integer coordinates) lie in any of the (F, 3, 2)
    triangles (pixel coordinates, any winding).

    Scanline filling by edge crossings: every edge crossing a pixel row marks +1 where it opens
    its triangle's span there and -1 where it closes it; summed along the row, a pixel's count
    is the number of triangles over it. A centre on an edge is decided by the top-left rule of
    GPU rasterisers: rows from an edge's upper end up to (not including) its lower end, columns
    from the opening edge up to (not including) the closing one. So triangles sharing an edge (its
    ends ordered alike in both, hence the same crossings) leave no crack and count no pixel twice,
    and a w x h rectangle with its corners on pixel centres covers w * h pixels.
    """
    start, end = triangles.reshape(-1, 2), triangles[:, [1, 2, 0]].reshape(-1, 2)  # (3F, 2) the edges
    downward = start[:, 1] < end[:, 1]  # image y grows downwards
    upper = np.where(downward[:, None], start, end)
    lower = np.where(downward[:, None], end, start)
    # a clockwise triangle (winding > 0) is closed on the right by its downward edges
    sign = np.repeat(np.sign(triangle_winding(triangles)), 3) * np.where(downward, -1.0, 1.0)
    first = np.maximum(np.ceil(upper[:, 1]), 0)
    rows_each = (np.minimum(np.ceil(lower[:, 1]), height) - first).astype(np.int64)
    crossing = (rows_each > 0) & (sign != 0)  # level edges and degenerate triangles mark nothing
    upper, lower, sign = upper[crossing], lower[crossing], sign[crossing]
    first, rows_each = first[crossing].astype(np.int64), rows_each[crossing]
    cover = np.zeros((height, width), dtype=bool)
    if not len(sign):
        return cover
    edge = np.repeat(np.arange(len(sign)), rows_each)  # (N,) one per edge and row it crosses
    row = np.arange(len(edge)) + np.repeat(first - (np.cumsum(rows_each) - rows_each), rows_each)
    drop = lower[:, 1] - upper[:, 1]
    x = upper[edge, 0] + (row - upper[edge, 1]) / drop[edge] * (lower[edge, 0] - upper[edge, 0])
    column = np.clip(np.ceil(x), 0, width).astype(np.int64)  # marks left of the image count from 0
    # counted over the rows and columns the marks reach, not the whole image
    top, left = row.min(), column.min()
    rows, stride = row.max() - top + 1, column.max() - left + 1
    counts = np.bincount((row - top) * stride + column - left, weights=sign[edge], minlength=rows * stride)
    inside = np.cumsum(counts.reshape(rows, stride), axis=1) > 0.5
    cover[top : top + rows, left : left + stride] = inside[:, : width - left]
    return cover


def posed_vertices(
    body: BodyModel, betas: np.ndarray, local_rotvec: np.ndarray, transl: np.ndarray
) -> np.ndarray:
    """(T, V, 3) posed meshes (camera frame), evaluated :data:`FRAME_CHUNK` frames at a time."""
    out = []
    for start in range(0, len(local_rotvec), FRAME_CHUNK):
        pose = torch.as_tensor(local_rotvec[start : start + FRAME_CHUNK], dtype=torch.float32)
        shape = torch.as_tensor(np.asarray(betas), dtype=torch.float32).expand(len(pose), -1)
        with torch.no_grad():
            vertices, _ = body_forward(
                body, shape, pose, torch.as_tensor(transl[start : start + FRAME_CHUNK])
            )
        out.append(vertices.numpy())
    return np.concatenate(out).astype(np.float64)


def quality_frames(keypoints: Keypoints) -> np.ndarray:
    """The frames with the subject (at most :data:`QUALITY_FRAMES`, evenly spread) that silhouettes use."""
    present = np.nonzero(keypoints.present)[0]
    return present[np.unique(np.linspace(0, len(present) - 1, QUALITY_FRAMES).round().astype(int))]


def reconstruction_quality(
    vertices_camera_m: np.ndarray,
    faces: np.ndarray,
    camera_K: np.ndarray,
    keypoints: Keypoints,
    reprojection_px: np.ndarray,
    frames: np.ndarray | None = None,
) -> dict:
    """The report's ``quality`` block: silhouette IoU and mask PSNR (dB) of the projected body vs the
    person mask (over :func:`quality_frames`), mean reprojection error (px), share of frames with
    the subject. ``vertices_camera_m`` holds every frame's mesh (T, V, 3), or, when ``frames`` is
    given, only those frames' meshes (so long clips never need all meshes at once)."""
    present = quality_frames(keypoints) if frames is None else np.asarray(frames)
    meshes = vertices_camera_m[present] if frames is None else vertices_camera_m
    scale = min(1.0, RENDER_MAX_WIDTH / keypoints.width)
    size = (round(keypoints.width * scale), round(keypoints.height * scale))
    K = np.diag([scale, scale, 1.0]) @ camera_K
    # a frame at a time: the stacks of masks and their copies were this stage's largest arrays
    ious, wrong_pixels = [], 0
    for mesh, frame in zip(meshes, present, strict=True):
        rendered = body_masks(mesh[None], faces, K, size)[0]
        observed = keypoints.person_mask(int(frame), size[::-1])
        ious.append(silhouette_iou(rendered, observed))
        wrong_pixels += np.count_nonzero(rendered != observed)
    return {
        "silhouette_iou": float(np.mean(ious)),
        "mask_psnr_db": psnr_from_mse_db(wrong_pixels / (len(present) * size[0] * size[1])),
        "reprojection_px": float(np.nanmean(reprojection_px)),
        "frames_with_person": float(np.mean(keypoints.present)),
    }


def build_report(
    *,
    video: dict,
    body: dict,
    morphology: SpineMorphology,
    spine_metrics: SpineMetrics,
    quality: dict,
    timing_s: dict,
) -> dict:
    """report.json's content (section 10)."""
    return {
        "video": video,
        "body": body,
        "spine_morphology": morphology.report(),
        "metrics": spine_metrics.metrics,
        "quality": quality,
        "timing_s": timing_s,
    }


def flatten(value, prefix: str = "") -> list[tuple[str, object]]:
    """Nested dicts and lists -> [(dotted.key, scalar)]; list items are numbered from 1."""
    if isinstance(value, dict):
        return [row for key, item in value.items() for row in flatten(item, f"{prefix}{key}.")]
    if isinstance(value, list | tuple):
        return [row for k, item in enumerate(value, 1) for row in flatten(item, f"{prefix}{k}.")]
    return [(prefix[:-1], value)]


def write_reports(
    out_dir: str | os.PathLike,
    report: dict,
    spine_metrics: SpineMetrics,
    morphology: SpineMorphology,
    fps: float,
) -> list[Path]:
    """``report.json``, ``report.csv`` and ``plots/*.png`` in ``out_dir``; returns the paths."""
    out = Path(out_dir)
    written = [write_text_atomic(out / "report.json", json.dumps(report, indent=1))]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["key", "value"])
    writer.writerows(flatten(report))
    written.append(write_text_atomic(out / "report.csv", text.getvalue()))
    for name, figure in (
        ("angle_curves.png", angle_curves_figure(spine_metrics)),
        ("spine_profile.png", spine_profile_figure(morphology)),
        ("symmetry.png", symmetry_figure(spine_metrics.metrics["symmetry_index_pct"])),
        ("coordination.png", coordination_figure(spine_metrics)),
        ("gait.png", gait_figure(spine_metrics.metrics["gait"])),
    ):
        with atomic_path(out / "plots" / name) as tmp:
            figure.savefig(tmp, format="png", dpi=100)
        written.append(out / "plots" / name)
    return written


def _figure(width_in: float, height_in: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def cycle_curves(angle: np.ndarray, cycles: list[tuple[int, int]], samples: int = 101) -> np.ndarray:
    """(C, samples) one angle resampled over each cycle's frames [start, end] (0 to 100% of the cycle)."""
    curves = []
    for start, end in cycles:
        segment = angle[start : min(end + 1, len(angle))]
        curves.append(np.interp(np.linspace(0, len(segment) - 1, samples), np.arange(len(segment)), segment))
    return np.stack(curves)


def angle_curves_figure(spine_metrics: SpineMetrics):
    """Lumbar and pelvic angles per cycle (thin), their mean +- SD band, and the normative ROM band."""
    figure = _figure(12, 6.5)
    axes = figure.subplots(2, 3)
    percent = np.linspace(0, 100, 101)
    source = spine_metrics.metrics["cycles"]["source"]
    for row, (block, angles) in enumerate(
        (("lumbar_rom_deg", spine_metrics.lumbar_deg), ("pelvic_range_deg", spine_metrics.pelvic_deg))
    ):
        for col, plane in enumerate(PLANES[block]):
            ax = axes[row, col]
            curves = cycle_curves(angles[:, col], spine_metrics.cycles)
            mean = curves.mean(axis=0)
            sd = curves.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros_like(mean)
            for curve in curves:
                ax.plot(percent, curve, color="tab:blue", alpha=0.3, lw=0.8)
            ax.fill_between(percent, mean - sd, mean + sd, color="tab:blue", alpha=0.25, label="mean +- SD")
            ax.plot(percent, mean, color="tab:blue", lw=2)
            norm = NORMATIVE_ROM_DEG.get(f"metrics.{block}.{plane}")
            if norm is not None:
                norm_mean, norm_sd, cite = norm
                centre = 0.5 * (mean.max() + mean.min())  # the band shows a range, centred on the subject's
                for rom, alpha in ((norm_mean + norm_sd, 0.10), (norm_mean - norm_sd, 0.15)):
                    ax.axhspan(centre - rom / 2, centre + rom / 2, color="tab:green", alpha=alpha)
                ax.plot(
                    [],
                    [],
                    color="tab:green",
                    alpha=0.3,
                    lw=6,
                    label=f"normal ROM {norm_mean} +- {norm_sd} ({cite})",
                )
                ax.legend(fontsize=7, loc="lower left")
            rom = spine_metrics.metrics[block][plane]
            region = "lumbar" if block == "lumbar_rom_deg" else "pelvis"
            ax.set_title(f"{region} {plane}: ROM {rom['mean']:.1f} +- {rom['sd']:.1f} deg", fontsize=9)
            ax.set_xlabel(
                "% of gait cycle" if source == "heel_strikes" else "% of clip (no complete cycle)", fontsize=8
            )
            ax.set_ylabel("deg", fontsize=8)
    count = spine_metrics.metrics["cycles"]["count"]
    figure.suptitle(
        f"Angles per gait cycle ({count} cycles, source: {source}); no verified norms for unshaded panels",
        fontsize=10,
    )
    return figure


def spine_profile_figure(morphology: SpineMorphology):
    """The rest vertebra chain in the sagittal plane with the measured spinal curve."""
    figure = _figure(4.5, 7)
    ax = figure.subplots()
    chain = morphology.rest.origins_m
    ax.plot(
        morphology.curve_m[:, 1] * 100,
        morphology.curve_m[:, 0] * 100,
        color="0.6",
        lw=1,
        label=f"measured curve ({morphology.source})",
    )
    ax.plot(chain[:, 2] * 100, chain[:, 1] * 100, "o-", color="tab:red", ms=4, label="vertebra chain")
    for name, point in zip(VERTEBRA_NAMES, chain, strict=False):
        ax.annotate(
            name, (point[2] * 100, point[1] * 100), xytext=(4, 0), textcoords="offset points", fontsize=6
        )
    profile = morphology.profile
    ax.set_title(
        f"lordosis {profile.lordosis_deg:.1f}, kyphosis {profile.kyphosis_deg:.1f},\n"
        f"sacral slope {profile.sacral_slope_deg:.1f} deg",
        fontsize=9,
    )
    ax.set_xlabel("anterior (cm)")
    ax.set_ylabel("height (cm, body frame)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(fontsize=7)
    return figure


def symmetry_figure(symmetry_pct: dict):
    """Robinson's symmetry indices as bars with the customary 10% line."""
    figure = _figure(5, 3.5)
    ax = figure.subplots()
    names = ("lateral_bending", "axial_rotation", "spinal")
    values = [symmetry_pct[name] for name in names]
    ax.bar([n.replace("_", " ") for n in names], values, color=["tab:blue", "tab:orange", "tab:gray"])
    ax.axhline(SYMMETRY_CUTOFF_PCT, color="k", ls="--", lw=1, label="10% (customary cut-off)")
    ax.set_ylabel("symmetry index (%)")
    ax.set_title("Lumbar symmetry (0 = symmetric)", fontsize=10)
    ax.legend(fontsize=7)
    return figure


def _mean_sd_band(ax, curves: np.ndarray, color: str, label: str) -> None:
    percent = np.linspace(0, 100, curves.shape[1])
    mean = curves.mean(axis=0)
    sd = curves.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros_like(mean)
    ax.fill_between(percent, mean - sd, mean + sd, color=color, alpha=0.2)
    ax.plot(percent, mean, color=color, lw=2, label=label)


def coordination_figure(spine_metrics: SpineMetrics):
    """Thorax and pelvis angles in the lab over the normalised cycle (mean +- SD, each centred on its
    cycle mean) and their continuous relative phase, transverse and frontal planes."""
    figure = _figure(10, 6.5)
    axes = figure.subplots(2, 2, sharex=True)
    cycles = spine_metrics.cycles
    block = spine_metrics.metrics["coordination_deg"]
    for col, (plane, column) in enumerate((("transverse", 2), ("frontal", 1))):
        for name, angles, color in (
            ("thorax (T1)", spine_metrics.thorax_deg, "tab:purple"),
            ("pelvis (S1)", spine_metrics.pelvic_deg, "tab:blue"),
        ):
            curves = cycle_curves(angles[:, column], cycles)
            _mean_sd_band(axes[0, col], curves - curves.mean(axis=1, keepdims=True), color, name)
        axes[0, col].set_title(f"{plane} rotation in the lab (centred)", fontsize=9)
        axes[0, col].set_ylabel("deg", fontsize=8)
        axes[0, col].legend(fontsize=7)
        _mean_sd_band(
            axes[1, col], cycle_curves(spine_metrics.relative_phase_deg[plane], cycles), "tab:red", "|CRP|"
        )
        axes[1, col].set_ylim(0, 180)
        axes[1, col].set_yticks([0, 45, 90, 135, 180])
        axes[1, col].set_title(
            f"relative phase {block[plane]['mean']:.0f} +- {block[plane]['sd']:.0f} deg "
            "(0 in phase, 180 anti-phase)",
            fontsize=9,
        )
        axes[1, col].set_xlabel("% of gait cycle", fontsize=8)
        axes[1, col].set_ylabel("deg", fontsize=8)
    figure.suptitle("Thorax-pelvis coordination (continuous relative phase, Hilbert transform)", fontsize=10)
    return figure


def gait_figure(gait: dict):
    """Step time and step length of each foot, with their symmetry indices and the walk's speed."""
    figure = _figure(7, 3.5)
    axes = figure.subplots(1, 2)
    for ax, (key, label, si_key) in zip(
        axes,
        (("step_time_s", "step time (s)", "step_time"), ("step_length_m", "step length (m)", "step_length")),
        strict=True,
    ):
        values = [gait[key][side] for side in ("left", "right")]
        ax.bar(
            ["left", "right"], [np.nan if v is None else v for v in values], color=["tab:blue", "tab:orange"]
        )
        si = gait["symmetry_index_pct"][si_key]
        ax.set_title(f"{label}: SI {'n/a' if si is None else f'{si:.1f}'}%", fontsize=9)
    cadence = gait["cadence_steps_per_min"]
    figure.suptitle(
        f"walking speed {gait['walking_speed_m_s']:.2f} m/s, cadence "
        f"{'n/a' if cadence is None else f'{cadence:.0f}'} steps/min (scale: {gait['scale']['source']})",
        fontsize=10,
    )
    return figure
