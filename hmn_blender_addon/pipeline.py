"""``run``: video -> keypoints -> fitted bodies -> smoothed motion -> dynamic spine -> metrics -> scene.

Each stage is one module with one entry; this module only chains them, caches the expensive
ones per video content and settings (keypoints, fit), reports progress and writes the outputs.
Outputs are written into a staging folder beside ``out_dir`` and moved in only when everything
succeeded, so a failed or cancelled run leaves ``out_dir`` exactly as it was.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .body.model import BodyModel, load_body_model
from .cache import load_stage, save_stage, stage_key, video_hash
from .errors import Cancelled, HMNError
from .fitting import BodyFit, FitSettings, fit_bodies, fit_from_arrays, fit_settings_key, fit_to_arrays
from .heap import release_free_memory, return_large_blocks
from .keypoints import DEFAULT_MAX_SIDE, Keypoints, extract_keypoints, keypoints_settings
from .kinematics import forward_kinematics
from .metrics.view import view_azimuth_deg, view_of_walk
from .paths import DATA_DIR
from .pose_prior import load_pose_prior
from .progress import Progress
from .reconstruction import Reconstruction, save_reconstruction
from .report import (
    SpineMetrics,
    build_report,
    gait_scale,
    lbp_metrics,
    posed_vertices,
    quality_frames,
    reconstruction_quality,
    world_from_camera,
    write_reports,
)
from .spine.dynamic import dynamic_spine, shaped_rest
from .spine.morphology import PLAUSIBLE_PROFILE_DEG, SpineMorphology, spine_morphology
from .spine.trunk_split import TRUNK_JOINTS, split_trunk
from .video import probe_video

SAMPLE_CLIP = DATA_DIR / "sample_gait.mp4"  # the embedded sample that ``demo`` runs on
SUBJECT_HEIGHT_RANGE_M = (0.5, 2.5)  # heights a walking subject can have (catches centimetres)


@dataclass(frozen=True)
class RunSettings:
    """What ``run`` does (the command line's flags; the add-on's panel)."""

    body: str = "open"
    smpl_model: str | None = None
    smoother: str = "gcn_lstm"
    focal_px: float | None = None
    max_side: int | None = DEFAULT_MAX_SIDE
    write_blend: bool = True
    subject_height_m: float | None = None  # the subject's stature: the fit's scale, when known
    fit: FitSettings = field(default_factory=FitSettings)

    def check(self) -> None:
        """One-line errors for settings no run can use."""
        height = self.subject_height_m
        if height is not None and not SUBJECT_HEIGHT_RANGE_M[0] <= height <= SUBJECT_HEIGHT_RANGE_M[1]:
            low, high = SUBJECT_HEIGHT_RANGE_M
            raise HMNError("--subject-height-m", f"must be {low} to {high} metres, got {height}")


def cached_fit(
    video_path: Path,
    keypoints: Keypoints,
    body: BodyModel,
    settings: RunSettings,
    metadata_focal_px: float | None,
    progress: Progress,
) -> BodyFit:
    """The fit of ``keypoints`` from the stage cache, or computed and stored."""
    fit_settings = replace(
        settings.fit, focal_px=settings.focal_px, subject_height_m=settings.subject_height_m
    )
    key = stage_key(
        "fit",
        video_hash(video_path),
        {
            "keypoints": keypoints_settings(settings.max_side),
            "fit": fit_settings_key(fit_settings, body, metadata_focal_px),
        },
    )
    cached = load_stage("fit", key)
    if cached is not None:
        progress(1.0, "fit from cache")
        return fit_from_arrays(cached)
    fit = fit_bodies(keypoints, body, fit_settings, metadata_focal_px, progress)
    save_stage("fit", key, fit_to_arrays(fit))
    return fit


@contextmanager
def staged_outputs(out_dir: Path) -> Iterator[Path]:
    """A temporary folder beside ``out_dir``; its files move into ``out_dir`` on success only."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise HMNError(out_dir, "the output folder is a file")
    created = [folder for folder in (out_dir, *out_dir.absolute().parents) if not folder.exists()]
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".hmn-run-", dir=out_dir))
    except OSError as exc:
        _remove_empty(created)
        raise HMNError(out_dir, f"cannot write to the output folder ({exc.strerror or exc})") from exc
    try:
        yield staging
        for source in sorted(staging.rglob("*")):
            target = out_dir / source.relative_to(staging)
            if source.is_dir():
                target.mkdir(exist_ok=True)
            else:
                os.replace(source, target)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_empty(created)
        if isinstance(exc, HMNError) and not isinstance(exc, Cancelled) and str(staging) in exc.subject:
            raise HMNError(exc.subject.replace(str(staging), str(out_dir)), exc.problem) from exc
        if isinstance(exc, OSError):  # e.g. the disk filled up under a writer outside atomic_path
            raise HMNError(out_dir, f"cannot write the outputs ({exc.strerror or exc})") from exc
        raise
    shutil.rmtree(staging, ignore_errors=True)


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders a failed run created (deepest first), if they are still empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


@dataclass
class StageTimer:
    """Seconds spent per stage, in order."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started


def fitted_motion(
    video_path: str | os.PathLike, settings: RunSettings, progress: Progress, timer: StageTimer
) -> tuple[Keypoints, BodyModel, BodyFit, np.ndarray, np.ndarray]:
    """The first half of ``run``: keypoints, body, fit, then the smoothed local rotations
    (T, 24, 3), the trunk's bend shared among the spine joints as walking shares it
    (:mod:`.spine.trunk_split`), and translation (T, 3) in the camera frame."""
    from .temporal.smooth import smooth_motion

    video_path = Path(video_path)
    info = probe_video(video_path)
    with timer("keypoints"), progress.stage(0.0, 0.45, "keypoints") as stage:
        keypoints = extract_keypoints(video_path, settings.max_side, stage)
    release_free_memory()  # the free pages a stage leaves among its small arrays would swell the next's
    with timer("body_model"):
        body = load_body_model(settings.body, settings.smpl_model)
    with timer("fit"), progress.stage(0.45, 0.75, "fit") as stage:
        fit = cached_fit(video_path, keypoints, body, settings, info.focal_px, stage)
    keypoints = keypoints.without_landmarks()  # the later stages read masks and timing only
    release_free_memory()
    with timer("smoothing"), progress.stage(0.75, 0.8, f"smoothing ({settings.smoother})") as stage:
        local = np.concatenate([fit.global_orient[:, None], fit.body_pose.reshape(-1, 23, 3)], axis=1)
        rotations, transl = smooth_motion(local, fit.transl, keypoints.fps, settings.smoother)
        prior = settings.fit.pose_prior or load_pose_prior()  # the prior the fit used
        rotations[:, TRUNK_JOINTS] = split_trunk(rotations[:, TRUNK_JOINTS], prior.trunk_split)
        stage(1.0, "done")
    release_free_memory()
    return keypoints, body, fit, rotations, transl


def body_joints(
    body: BodyModel, betas: np.ndarray, rotations: np.ndarray, transl: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The shaped body's rest vertices (V, 3) and its joints (T, 24, 3) moved by local rotations
    (T, 24, 3, axis-angle) and SMPL translations (T, 3), camera frame."""
    rest_vertices, rest_joints = shaped_rest(body, betas)
    return rest_vertices, forward_kinematics(rotations, rest_joints, transl + rest_joints[0], body.parents)


@dataclass
class Computed:
    """Everything a run produces before anything is written."""

    reconstruction: Reconstruction
    report: dict
    spine_metrics: SpineMetrics
    morphology: SpineMorphology
    body: BodyModel


def _quality(
    body: BodyModel, fit: BodyFit, rotations: np.ndarray, transl: np.ndarray, keypoints: Keypoints
) -> dict:
    """The report's quality block: the smoothed motion (rotations (T, 24, 3), transl (T, 3)) posed
    and rendered at :func:`quality_frames`."""
    frames = quality_frames(keypoints)
    meshes = posed_vertices(body, fit.betas, rotations[frames], transl[frames])
    return reconstruction_quality(meshes, body.faces, fit.camera_K, keypoints, fit.reprojection_px, frames)


def compute(video_path: str | os.PathLike, settings: RunSettings, progress: Progress) -> Computed:
    """The whole analysis of one clip, in memory (see the module docstring)."""
    settings.check()
    return_large_blocks()  # or a long clip's frames leave the heap growing with its length
    video_path = Path(video_path)
    timer = StageTimer()
    keypoints, body, fit, rotations, transl = fitted_motion(video_path, settings, progress, timer)
    with (
        timer("spine_and_metrics"),
        progress.stage(0.8, 0.9, "spine and metrics") as stage,
        ThreadPoolExecutor(max_workers=1) as beside,
    ):
        # the quality scores (a fixed sample of frames posed, rendered and compared: mostly numpy
        # and torch, which let go of the interpreter) run on the second core beside the spine
        stage(0.0, "reconstruction quality, morphology")
        quality_job = beside.submit(_quality, body, fit, rotations, transl, keypoints)
        rest_vertices, joints = body_joints(body, fit.betas, rotations, transl)
        lab = world_from_camera(fit.ground_normal, fit.ground_offset_m, joints[:, 0])
        morphology = spine_morphology(body, fit.betas, transl, lab, fit.camera_K, keypoints)
        # what the rest needs of the keypoints and the fit: dropping their per-frame arrays before
        # the spine's are made keeps a long clip's peak down (the quality job, a fixed sample of
        # frames, is done by then, or soon)
        betas, camera_K, focal_source = fit.betas, fit.camera_K, fit.focal_source
        fps, times_s, present = keypoints.fps, keypoints.times_s, keypoints.present
        width, height = keypoints.width, keypoints.height
        del keypoints, fit
        stage(0.5, "dynamic spine")
        spine = dynamic_spine(body, betas, rotations, transl, morphology, np.float32)
        stage(0.7, "metrics")
        fitted_height_m = float(np.ptp(rest_vertices[:, 1]))
        scale = gait_scale(fitted_height_m, settings.subject_height_m)
        spine_metrics = lbp_metrics(spine, joints, lab, fps, video_path, scale)
        quality = quality_job.result()
    reconstruction = Reconstruction(
        fps=fps,
        frame_times_s=times_s,
        body_model=body.kind,
        betas=betas,
        global_orient=rotations[:, 0],
        body_pose=rotations[:, 1:].reshape(len(rotations), -1),
        transl=transl,
        joints_m=joints,
        vertebrae_m=spine.centres_m,
        vertebra_rotations=spine.rotations,
        camera_K=camera_K,
        image_size=np.array([width, height]),
        world_from_camera=lab,
        present=present,
        heel_strikes_left=np.array(spine_metrics.heel_strikes["left"], dtype=np.int64),
        heel_strikes_right=np.array(spine_metrics.heel_strikes["right"], dtype=np.int64),
        video_path=str(video_path.resolve()),
        spine_morphology_json=json.dumps(morphology.report()),
        vertebra_names=spine.names,
    )
    report = build_report(
        video={
            "path": str(video_path),
            "frames": len(times_s),
            "fps": fps,
            "width": width,
            "height": height,
        },
        body={
            "model": body.kind,
            "betas": [float(b) for b in betas],
            "height_m": fitted_height_m,
        },
        morphology=morphology,
        spine_metrics=spine_metrics,
        quality=quality,
        timing_s={name: round(seconds, 3) for name, seconds in timer.seconds.items()},
    )
    report["camera"] = {"focal_px": float(camera_K[0, 0]), "focal_source": focal_source}
    report["view"] = view_of_walk(view_azimuth_deg(lab, joints[:, 0]))
    report["settings"] = {
        "smoother": settings.smoother,
        "body": settings.body,
        "subject_height_m": settings.subject_height_m,
    }
    return Computed(reconstruction, report, spine_metrics, morphology, body)


def reconstruct(
    video_path: str | os.PathLike, progress: Progress, subject_height_m: float | None = None
) -> Reconstruction:
    """The bench's entry: the reconstruction of a clip with the default settings (and the subject's
    height, when given), nothing written."""
    settings = RunSettings(write_blend=False, subject_height_m=subject_height_m)
    return compute(video_path, settings, progress).reconstruction


@dataclass
class RunResult:
    """Where a run's outputs are, and its report."""

    out_dir: Path
    reconstruction_path: Path
    report_path: Path
    blend_path: Path | None
    report: dict
    reconstruction: Reconstruction


def run(
    video_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    settings: RunSettings = RunSettings(),
    progress: Progress | None = None,
) -> RunResult:
    """Analyse ``video_path`` and write reconstruction.npz, report.json/.csv, plots/ and scene.blend.

    Nothing appears in ``out_dir`` unless the whole run succeeds (including cancellation).
    """
    progress = progress or Progress()
    out_dir = Path(out_dir)
    with staged_outputs(out_dir) as staging:
        computed = compute(video_path, settings, progress)
        with progress.stage(0.9, 0.93, "writing reports") as stage:
            save_reconstruction(computed.reconstruction, staging / "reconstruction.npz")
            write_reports(
                staging,
                computed.report,
                computed.spine_metrics,
                computed.morphology,
                computed.reconstruction.fps,
            )
            stage(1.0, "reports written")
        if settings.write_blend:
            from .blender.build import write_scene_blend

            with progress.stage(0.93, 1.0, "scene.blend") as stage:
                write_scene_blend(
                    computed.reconstruction, computed.report, staging / "scene.blend", stage, computed.body
                )
    return RunResult(
        out_dir=out_dir,
        reconstruction_path=out_dir / "reconstruction.npz",
        report_path=out_dir / "report.json",
        blend_path=out_dir / "scene.blend" if settings.write_blend else None,
        report=computed.report,
        reconstruction=computed.reconstruction,
    )


def _print_summary(result: RunResult) -> None:
    metrics = result.report["metrics"]
    lumbar = metrics["lumbar_rom_deg"]
    print(f"\n{result.out_dir}: {metrics['cycles']['count']} cycles ({metrics['cycles']['source']})")
    print(
        "lumbar ROM (deg): "
        + ", ".join(f"{plane} {lumbar[plane]['mean']:.1f} +- {lumbar[plane]['sd']:.1f}" for plane in lumbar)
    )
    print(f"pelvic tilt range (deg): {metrics['pelvic_range_deg']['tilt']['mean']:.1f}")
    view = result.report["view"]
    unseen = [plane for plane in ("sagittal", "frontal", "transverse") if plane not in view["planes_shown"]]
    print(
        f"view: {view['kind']} (azimuth {view['azimuth_deg']:.0f} deg), showing the "
        f"{' and '.join(view['planes_shown'])} plane(s)"
        + (f"; the {' and '.join(unseen)} figures are not measured from it" if unseen else "")
    )
    morphology = result.report["spine_morphology"]
    rejected = morphology["rejected_mask_reading"]
    print(
        f"spine profile (deg): lordosis {morphology['lumbar_lordosis_deg']:.1f}, "
        f"kyphosis {morphology['thoracic_kyphosis_deg']:.1f} ({morphology['source']}"
        + (
            ""
            if rejected is None
            else f"; the mask read lordosis {rejected['lumbar_lordosis_deg']:.1f}, kyphosis "
            f"{rejected['thoracic_kyphosis_deg']:.1f}: outside {PLAUSIBLE_PROFILE_DEG[0]:.0f} to "
            f"{PLAUSIBLE_PROFILE_DEG[1]:.0f}"
        )
        + ")"
    )
    print(f"spinal symmetry index (%): {metrics['symmetry_index_pct']['spinal']:.1f}")
    gait, coordination = metrics["gait"], metrics["coordination_deg"]
    print(
        f"walking speed {gait['walking_speed_m_s']:.2f} m/s, "
        f"stride {_number(gait['stride_length_m']['mean'])} m, "
        f"cadence {_number(gait['cadence_steps_per_min'], 0)} steps/min (scale: {gait['scale']['source']})"
    )
    print(
        "thorax-pelvis relative phase (deg, 0 in phase, 180 anti-phase): "
        f"transverse {coordination['transverse']['mean']:.0f}, frontal {coordination['frontal']['mean']:.0f}"
    )
    written = [result.reconstruction_path, result.report_path, result.out_dir / "report.csv"]
    print(
        "wrote " + ", ".join(str(p) for p in [*written, *([result.blend_path] if result.blend_path else [])])
    )


def _number(value: float | None, decimals: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{decimals}f}"


def _settings_from_args(args: argparse.Namespace) -> RunSettings:
    return RunSettings(
        body=args.body,
        smpl_model=args.smpl_model,
        smoother=args.smoother,
        focal_px=args.focal_px,
        write_blend=not args.no_blend,
        subject_height_m=args.subject_height_m,
    )


def _handle_run(args: argparse.Namespace, progress: Progress) -> int:
    _print_summary(run(args.video, args.out, _settings_from_args(args), progress))
    return 0


def _handle_demo(args: argparse.Namespace, progress: Progress) -> int:
    _print_summary(run(SAMPLE_CLIP, args.out, _settings_from_args(args), progress))
    return 0


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    from .temporal.smooth import SMOOTHERS

    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--body", choices=("open", "smpl"), default="open", help="body model (default: open)")
    parser.add_argument("--smpl-model", help="official SMPL file or folder (else $HMN_SMPL_MODEL_DIR)")
    parser.add_argument("--smoother", choices=SMOOTHERS, default="gcn_lstm", help="temporal smoother")
    parser.add_argument(
        "--focal-px", type=float, help="camera focal length in pixels (default: metadata, else phone-like)"
    )
    parser.add_argument(
        "--subject-height-m",
        type=float,
        help="the subject's measured height: the fitted body's stature, so the scale of the body, its "
        "distance and the walking speed and stride and step lengths (default: the shape prior's scale)",
    )
    parser.add_argument("--no-blend", action="store_true", help="do not write scene.blend")


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run", help="analyse a gait video: body, dynamic spine, metrics, scene.blend"
    )
    parser.add_argument("video", type=Path)
    _add_run_options(parser)
    parser.set_defaults(handler=_handle_run)
    demo = subparsers.add_parser("demo", help="run on the embedded sample clip with the open body")
    _add_run_options(demo)
    demo.set_defaults(handler=_handle_demo)
