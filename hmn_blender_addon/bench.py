"""``bench``: score every available pipeline stage on rendered ground-truth clips (DESIGN.md 6, 8, 10).

``python -m hmn_blender_addon bench --out DIR [--clips N] [--coordination-walks N] [--screening-walks N]
[--set DIR] [--frames N] [--size WxH]``, or ``bench --out DIR --scale-checks [--scale-videos N]
[--scale-long-s S]`` for the scale checks of :mod:`.scale` (throughput on 1 and 2 workers, the
same batch's cohort.csv on a local Ray instance, peak memory of a long against a 1-minute 720p
clip), printed and written to ``DIR/scale.json``.

The set: ``--set DIR`` reads clips made by ``synth`` (each sub-folder with ``clip.mp4``,
``truth.json``, ``masks.npz``); otherwise N clips are rendered into ``DIR/clips`` (kept, and reused
by a later run with the same settings) covering the three views, several bodies, reduced lumbar
ROM (scale 0.5) and asymmetric gait (asymmetry 0.3), half of them in skin-tight coloured shorts
and top (:func:`clip_design`), side-view walks each rendered with several thorax-pelvis
phases (:func:`coordination_design`), whose estimates must rank as the truth does, and walks
each rendered from the side and obliquely at several lumbar ROM scales and with an asymmetric twin
(:func:`screening_design`), whose estimated ROMs and symmetry indices must order as they were made
(:func:`screening_ranking`).

Stages, each timed per clip:
- ``keypoints`` (:func:`..keypoints.extract_keypoints`, uncached): MediaPipe's landmarks against
  the projected true joints of the same name (``keypoints_px``), its person mask against the
  true mask (``keypoints_mask_iou``) and the share of frames with the subject.
- reconstruction stages listed in :data:`RECONSTRUCTION_STAGES` as (label, module, function):
  ``function(video_path: Path, progress: Progress, subject_height_m: float | None = None) ->
  Reconstruction`` (``..reconstruction``), the
  whole pipeline from the video (its keypoints from the stage cache that the bench's keypoints
  stage filled, so that its time is the pipeline's after the keypoints); its optional
  ``timing_s`` dict breaks its time down by stage.
  Each is scored with section 6's definitions against the truth: MPJPE and PA-MPJPE (mm, camera
  frame), acceleration error (mm/s^2), heel strikes (frames), pelvis orientation (the geodesic
  angle between S1's estimated and true anatomical frames, degrees), and from its vertebra frames the
  lumbar ROM, pelvic tilt range and symmetry index errors and the spine curve's Hausdorff
  distance after pelvis alignment; the gait markers (walking speed, stride length, cadence: percent
  errors) and the thorax-pelvis relative phase (degrees). The scale-bound errors
  (:data:`HEIGHT_GIVEN_KEYS`) again, suffixed ``_height``, from a second, untimed run given the true
  height as a user giving the subject's height would (``function(..., subject_height_m=H)``). Where the result
  carries them (:func:`score_body`): its ``spine_morphology`` (report.json's block) against the
  true lordosis and kyphosis, and its body (``body_model``, ``betas``, poses, ``transl``,
  ``camera_K``) projected against the true masks
  (``silhouette_iou``, ``mask_psnr_db``) and against the true body surface every
  :data:`SURFACE_EVERY` frames (``surface_hausdorff_mm``, symmetric, after pelvis alignment). A
  stage whose module or function does not exist yet is reported as not available; nothing
  stands in for it.

The stages run on an empty stage cache of their own, so that their speed is the work's.
Writes ``DIR/bench.json`` (``clips``, ``summary``, ``summary_by_view``, ``coordination_ranking``,
``screening_ranking``, ``smoothers``, ``speed``, ``stages``), ``DIR/bench.md`` (the README's table)
and prints one table.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import resource
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .atomic import write_text_atomic
from .cache import fresh_cache
from .errors import HMNError
from .metrics.accuracy import accel_error_mm, hausdorff_mm, mpjpe_mm, pa_mpjpe_mm, psnr_db, silhouette_iou
from .metrics.angles import anatomical_rotations
from .metrics.cycles import walk_metrics
from .metrics.view import PLANES_SHOWN
from .progress import Progress
from .skeleton import MEDIAPIPE_LANDMARK_NAMES, SMPL_JOINT_INDEX
from .synth.camera import VIEWS
from .synth.command import DEFAULT_MOCAP_DIR, SynthSettings, make_clip
from .synth.truth import read_masks

# (label, module relative to this package, function): a function (video_path, progress) -> Reconstruction.
RECONSTRUCTION_STAGES: tuple[tuple[str, str, str], ...] = (("fit", ".pipeline", "reconstruct"),)
VARIANTS = {"normal": (1.0, 0.0), "reduced_rom": (0.5, 0.0), "asymmetric": (1.0, 0.3)}
COORDINATION_PHASES_DEG = (30.0, 50.0, 120.0)  # pairs 20, 70 and 90 deg apart
RANK_MIN_DIFFERENCE_DEG = 20.0  # clips made at least this far apart must be ranked as made
# Screening (issue 8): each walk at these lumbar ROM scales, and its scale-1 clip's asymmetric twin
SCREENING_SCALES = (0.5, 1.0, 1.5)
SCREENING_ASYMMETRY = 0.3
LUMBAR_PLANES = ("sagittal", "frontal", "transverse")
# the planes each view shows (issue 8: sagittal figures from the side, frontal and transverse ones
# from the front or obliquely); the asymmetric twins are made in the oblique view
SCREENING_VIEWS = ("side", "oblique")
SURFACE_EVERY = 15  # frames between body-surface comparisons (each regenerates a true mesh)
# Joints that MediaPipe and SMPL both name (REFERENCES.md section 6), compared in pixels
KEYPOINT_JOINTS: tuple[str, ...] = tuple(
    f"{side}_{joint}"
    for side in ("left", "right")
    for joint in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")
)


def clip_design(count: int, frames: int, width: int, height: int) -> list[tuple[str, SynthSettings]]:
    """``count`` clips: variants (normal, reduced ROM, asymmetric) in turn, views shifted every three
    clips so that each view meets each variant, a new body per clip, every other one clothed."""
    design = []
    variants = list(VARIANTS)
    for i in range(count):
        variant = variants[i % 3]
        view = VIEWS[(i + i // 3) % 3]
        scale, asymmetry = VARIANTS[variant]
        settings = SynthSettings(
            seed=200 + i,
            body_seed=100 + i,
            view=view,
            frames=frames,
            width=width,
            height=height,
            lumbar_rom_scale=scale,
            asymmetry=asymmetry,
            clothes=i % 2 == 1,
        )
        design.append((f"{i:02d}_{view}_{variant}", settings))
    return design


def coordination_design(walks: int, frames: int, width: int, height: int) -> list[tuple[str, SynthSettings]]:
    """Side-view clips of ``walks`` walks, each made with the thorax-pelvis phases of
    :data:`COORDINATION_PHASES_DEG` (20 and 90 deg apart, among others): the same body, limbs and
    camera, only the thorax's timing differs, so the estimates must rank as the truth does."""
    return [
        (
            f"c{w:d}_side_phase{phase:03.0f}",
            SynthSettings(
                seed=300 + w,
                body_seed=150 + w,
                view="side",
                frames=frames,
                width=width,
                height=height,
                coordination_phase_deg=phase,
            ),
        )
        for w in range(walks)
        for phase in COORDINATION_PHASES_DEG
    ]


def screening_design(walks: int, frames: int, width: int, height: int) -> list[tuple[str, SynthSettings]]:
    """Clips of ``walks`` walks, each made in the views of :data:`SCREENING_VIEWS` at the lumbar ROM
    scales of :data:`SCREENING_SCALES`, and in the oblique view once more at scale 1 with asymmetry
    :data:`SCREENING_ASYMMETRY`: the same body, limbs and camera, so the estimates must order as
    they were made (:func:`screening_ranking`)."""
    variants = [(view, scale, 0.0) for view in SCREENING_VIEWS for scale in SCREENING_SCALES]
    variants.append(("oblique", 1.0, SCREENING_ASYMMETRY))
    return [
        (
            f"s{w:d}_{view}_"
            + (f"asym{100 * asymmetry:03.0f}" if asymmetry else f"scale{100 * scale:03.0f}"),
            SynthSettings(
                seed=400 + w,
                body_seed=170 + w,
                view=view,
                frames=frames,
                width=width,
                height=height,
                lumbar_rom_scale=scale,
                asymmetry=asymmetry,
            ),
        )
        for w in range(walks)
        for view, scale, asymmetry in variants
    ]


def _generated_set(out_dir: Path, design: list[tuple[str, SynthSettings]], progress: Progress) -> list[Path]:
    """Render the design's clips into ``out_dir/clips``, reusing those made with the same settings."""
    folders = []
    for k, (name, settings) in enumerate(design):
        folder = out_dir / "clips" / name
        truth_path = folder / "truth.json"
        done = truth_path.is_file() and (folder / "clip.mp4").is_file() and (folder / "masks.npz").is_file()
        if not (done and json.loads(truth_path.read_text())["settings"] == asdict(settings)):
            with progress.stage(k / len(design), (k + 1) / len(design), f"synth {name}") as stage:
                make_clip(settings, folder, stage, DEFAULT_MOCAP_DIR)
        folders.append(folder)
    return folders


def _read_set(set_dir: Path) -> list[Path]:
    folders = sorted(p.parent for p in set_dir.glob("*/truth.json"))
    if not folders:
        raise HMNError(set_dir, "no clips (sub-folders with truth.json) found")
    return folders


def reconstruction_stages() -> tuple[dict[str, object], dict[str, str]]:
    """Available stage functions by label, and the status line of every listed stage."""
    available, status = {}, {"keypoints": "available"}
    for label, module_name, function in RECONSTRUCTION_STAGES:
        try:
            module = importlib.import_module(module_name, __package__)
        except ModuleNotFoundError as exc:
            status[label] = f"not yet available (no module {exc.name})"
            continue
        if not hasattr(module, function):
            status[label] = f"not yet available (no {module.__name__}.{function})"
            continue
        available[label] = getattr(module, function)
        status[label] = "available"
    return available, status


def _project(points_camera_m: np.ndarray, K: np.ndarray) -> np.ndarray:
    uvw = points_camera_m @ K.T
    return uvw[..., :2] / uvw[..., 2:3]


def score_keypoints(keypoints, truth: dict, true_masks: np.ndarray) -> dict[str, float]:
    """MediaPipe landmarks vs projected true joints (px), its person mask's IoU, frames with the subject."""
    true_px = _project(np.asarray(truth["joints_camera_m"]), np.asarray(truth["camera"]["K"]))
    mp = [MEDIAPIPE_LANDMARK_NAMES.index(name) for name in KEYPOINT_JOINTS]
    smpl = [SMPL_JOINT_INDEX[name] for name in KEYPOINT_JOINTS]
    present = keypoints.present
    errors = np.linalg.norm(keypoints.landmarks_px[present][:, mp, :2] - true_px[present][:, smpl], axis=-1)
    ious = [silhouette_iou(keypoints.person_mask(f), true_masks[f]) for f in range(len(true_masks))]
    return {
        "keypoints_px": float(np.nanmean(errors)),
        "keypoints_mask_iou": float(np.mean(ious)),
        "frames_with_person": float(np.mean(present)),
    }


# The smoother table's reference row: the truth low-passed (see smoother_errors); 10 Hz lies above
# the 6 Hz standard for human motion and inside the 4-20 Hz the literature uses (REFERENCES.md 5).
LOWPASS_FLOOR_HZ = 10.0
LOWPASS_FLOOR_ROW = "truth_lowpass"


def smoother_errors(video: Path, truth: dict) -> dict[str, dict[str, float]]:
    """Per smoother (:data:`..temporal.smooth.SMOOTHERS`): MPJPE (mm) and acceleration error
    (mm/s^2) of the clip's smoothed fit against the truth (keypoints and fit come from the stage
    cache that the pipeline's run filled); and, as :data:`LOWPASS_FLOOR_ROW`, the true joints
    themselves through a zero-lag Butterworth at :data:`LOWPASS_FLOOR_HZ`: the least acceleration
    error a smoother that removes what lies above that frequency can reach on this clip."""
    from .pipeline import RunSettings, StageTimer, body_joints, fitted_motion
    from .temporal.filters import butterworth
    from .temporal.smooth import SMOOTHERS

    true_joints = np.asarray(truth["joints_camera_m"])
    fps = float(truth["fps"])

    def scores(joints: np.ndarray) -> dict[str, float]:
        return {
            "mpjpe_mm": mpjpe_mm(joints, true_joints),
            "accel_err_mm_s2": accel_error_mm(joints, true_joints) * fps**2,
        }

    errors = {}
    for smoother in SMOOTHERS:
        settings = RunSettings(smoother=smoother, write_blend=False)
        _, body, fit, rotations, transl = fitted_motion(video, settings, Progress(), StageTimer())
        errors[smoother] = scores(body_joints(body, fit.betas, rotations, transl)[1])
    flat = true_joints.reshape(len(true_joints), -1)
    errors[LOWPASS_FLOOR_ROW] = scores(butterworth(flat, fps, LOWPASS_FLOOR_HZ).reshape(true_joints.shape))
    return errors


def mocap_smoother_rows() -> list[dict] | None:
    """The temporal model's held-out comparison on the CMU test subjects (``temporal.train``), or
    None where the motion-capture folder is absent."""
    from .temporal.train import DEFAULT_DATA, held_out_comparison

    if not DEFAULT_DATA.is_dir():
        return None
    rows, _ = held_out_comparison()
    return rows


def true_anatomical_camera(truth: dict) -> np.ndarray:
    """(T, 19, 3, 3) the true vertebrae's anatomical frames (S1 first; S1 moves with the pelvis) in
    the camera frame, from the truth's curve frames and their static posture."""
    rotation = np.asarray(truth["camera"]["world_to_camera"])[:3, :3]
    frames_world = rotation.T @ np.asarray(truth["vertebra_frames_camera"])
    return rotation @ anatomical_rotations(
        frames_world, np.asarray(truth["vertebra_static_frames"]), np.eye(3)
    )


def rotation_angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(...,) geodesic angle (degrees) between rotation matrices (..., 3, 3)."""
    relative = np.swapaxes(a, -1, -2) @ b
    cosine = (np.trace(relative, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))


def reconstruction_metrics(reconstruction, fps: float) -> dict:
    """The ``metrics`` block (fitted scale) of a Reconstruction."""
    rotation, offset = reconstruction.world_from_camera[:3, :3], reconstruction.world_from_camera[:3, 3]
    joints_lab = reconstruction.joints_m @ rotation.T + offset
    strikes = {
        "left": list(reconstruction.heel_strikes_left),
        "right": list(reconstruction.heel_strikes_right),
    }
    anatomical = rotation @ reconstruction.vertebra_rotations
    return walk_metrics(anatomical, joints_lab, strikes, fps)[0]


def score_reconstruction(reconstruction, truth: dict, measured: dict | None = None) -> dict[str, float]:
    """Section 6's errors of a Reconstruction against a clip's truth; ``measured`` is its
    :func:`reconstruction_metrics` when the caller has them already."""
    true_joints = np.asarray(truth["joints_camera_m"])
    joints = reconstruction.joints_m
    fps = float(truth["fps"])
    errors = {
        "mpjpe_mm": mpjpe_mm(joints, true_joints),
        "pa_mpjpe_mm": pa_mpjpe_mm(joints, true_joints),
        "accel_err_mm_s2": accel_error_mm(joints, true_joints) * fps**2,
    }
    strikes = {
        "left": list(reconstruction.heel_strikes_left),
        "right": list(reconstruction.heel_strikes_right),
    }
    found = [
        abs(f - min(truth["heel_strikes"][s], key=lambda t: abs(t - f))) for s in strikes for f in strikes[s]
    ]
    if found and all(truth["heel_strikes"].values()):
        errors["heel_strike_err_frames"] = float(np.mean(found))
    errors["pelvis_orientation_err_deg"] = float(
        np.mean(
            rotation_angle_deg(reconstruction.vertebra_rotations[:, 0], true_anatomical_camera(truth)[:, 0])
        )
    )
    metrics = measured or reconstruction_metrics(reconstruction, fps)
    true_metrics = truth["metrics"]
    errors |= score_gait(metrics, true_metrics)
    errors["pelvic_tilt_range_err_deg"] = abs(
        metrics["pelvic_range_deg"]["tilt"]["mean"] - true_metrics["pelvic_range_deg"]["tilt"]["mean"]
    )
    for plane in ("sagittal", "frontal", "transverse"):
        errors[f"lumbar_rom_err_deg_{plane}"] = abs(
            metrics["lumbar_rom_deg"][plane]["mean"] - true_metrics["lumbar_rom_deg"][plane]["mean"]
        )
    errors["symmetry_index_err_pct"] = abs(
        metrics["symmetry_index_pct"]["spinal"] - true_metrics["symmetry_index_pct"]["spinal"]
    )
    true_vertebrae = np.asarray(truth["vertebrae_camera_m"])
    shift = (true_joints[:, 0] - joints[:, 0])[:, None]
    errors["spine_hausdorff_mm"] = float(
        np.mean(
            [
                hausdorff_mm(v, t)
                for v, t in zip(reconstruction.vertebrae_m + shift, true_vertebrae, strict=True)
            ]
        )
    )
    return errors


# The errors that depend on the body's scale, scored again on a run given the subject's height.
HEIGHT_GIVEN_KEYS = ("mpjpe_mm", "spine_hausdorff_mm", "walking_speed_err_pct", "stride_length_err_pct")


def height_given_errors(reconstruction, truth: dict) -> dict[str, float]:
    """:data:`HEIGHT_GIVEN_KEYS` of :func:`score_reconstruction`, suffixed ``_height``, for a
    reconstruction run with the true height as the subject's (those it has: a short clip may have no
    stride)."""
    errors = score_reconstruction(reconstruction, truth)
    return {f"{key}_height": errors[key] for key in HEIGHT_GIVEN_KEYS if key in errors}


def _relative_error_pct(value: float | None, true: float | None) -> float | None:
    return None if value is None or not true else 100.0 * abs(value - true) / abs(true)


def score_gait(metrics: dict, true_metrics: dict) -> dict[str, float]:
    """Gait marker errors (percent of the truth) and, where ``metrics`` has them, the thorax-pelvis
    relative phase errors (degrees), against the truth's ``metrics`` block."""
    gait, true_gait = metrics["gait"], true_metrics["gait"]
    errors = {
        "walking_speed_err_pct": _relative_error_pct(
            gait["walking_speed_m_s"], true_gait["walking_speed_m_s"]
        ),
        "stride_length_err_pct": _relative_error_pct(
            gait["stride_length_m"]["mean"], true_gait["stride_length_m"]["mean"]
        ),
        "cadence_err_pct": _relative_error_pct(
            gait["cadence_steps_per_min"], true_gait["cadence_steps_per_min"]
        ),
    }
    for plane in metrics.get("coordination_deg", {}):
        errors[f"relative_phase_err_deg_{plane}"] = abs(
            metrics["coordination_deg"][plane]["mean"] - true_metrics["coordination_deg"][plane]["mean"]
        )
    return {key: value for key, value in errors.items() if value is not None}


def coordination_ranking(clips: list[dict]) -> dict[str, float] | None:
    """Share of the pairs of clips of one walk (same seeds and view) made with transverse phases at
    least :data:`RANK_MIN_DIFFERENCE_DEG` apart that the estimates order as they were made; None
    when the set has no such pair. Each clip: {"walk", "true_phase_deg" (as made), "phase_deg"}."""
    pairs = [
        (a, b)
        for i, a in enumerate(clips)
        for b in clips[i + 1 :]
        if a["walk"] == b["walk"]
        and abs(a["true_phase_deg"] - b["true_phase_deg"]) >= RANK_MIN_DIFFERENCE_DEG
    ]
    if not pairs:
        return None
    correct = [
        np.sign(a["phase_deg"] - b["phase_deg"]) == np.sign(a["true_phase_deg"] - b["true_phase_deg"])
        for a, b in pairs
    ]
    return {"pairs": float(len(pairs)), "ranked_correctly": float(np.mean(correct))}


def screening_ranking(clips: list[dict]) -> dict[str, dict] | None:
    """How often the estimates order clips of one walk as they were made (issue 8's screening checks).

    Each clip: {"walk" (seeds and view), "rom_scale", "asymmetry" (as made), "lumbar_rom_deg"
    {plane: estimated mean ROM}, "symmetry_index_pct" (the estimated indices as in report.json:
    spinal, lateral_bending, axial_rotation)}. Per plane, over the views that show it
    (:data:`PLANES_SHOWN`): the share of pairs of a walk's symmetric clips made at different ROM
    scales whose estimated ROMs order as the scales do; and the share of asymmetric clips whose
    estimated spinal symmetry index exceeds their symmetric twin's (same walk and scale), and the
    same by each of its two parts. None when the set has neither kind of pair."""
    symmetric = [c for c in clips if c["asymmetry"] == 0.0]
    scale_pairs = [
        (a, b)
        for i, a in enumerate(symmetric)
        for b in symmetric[i + 1 :]
        if a["walk"] == b["walk"] and a["rom_scale"] != b["rom_scale"]
    ]
    twins = [
        (asymmetric, twin)
        for asymmetric in clips
        if asymmetric["asymmetry"] > 0.0
        for twin in symmetric
        if twin["walk"] == asymmetric["walk"] and twin["rom_scale"] == asymmetric["rom_scale"]
    ]
    result: dict[str, dict] = {}
    for plane in LUMBAR_PLANES:
        ordered = [
            np.sign(a["lumbar_rom_deg"][plane] - b["lumbar_rom_deg"][plane])
            == np.sign(a["rom_scale"] - b["rom_scale"])
            for a, b in scale_pairs
            if plane in PLANES_SHOWN.get(a["walk"][-1], ())
        ]
        if ordered:
            result.setdefault("rom_scale", {})[plane] = {
                "pairs": float(len(ordered)),
                "ranked_correctly": float(np.mean(ordered)),
            }
    if twins:
        result["asymmetry"] = {"pairs": float(len(twins))} | {
            key: float(
                np.mean([a["symmetry_index_pct"][index] > b["symmetry_index_pct"][index] for a, b in twins])
            )
            for key, index in (
                ("ranked_correctly", "spinal"),
                ("ranked_correctly_lateral_bending", "lateral_bending"),
                ("ranked_correctly_axial_rotation", "axial_rotation"),
            )
        }
    return result or None


def true_surface_camera(truth: dict) -> tuple[np.ndarray, np.ndarray]:
    """Frames (every :data:`SURFACE_EVERY`) and the true body mesh there (S, V, 3), camera frame,
    regenerated from the clip's settings (the synthetic truth is deterministic)."""
    from .synth.camera import to_camera
    from .synth.command import clip_truth

    motion, camera, _ = clip_truth(SynthSettings(**truth["settings"]))
    frames = np.arange(0, motion.vertices_m.shape[0], SURFACE_EVERY)
    return frames, to_camera(motion.vertices_m[frames].astype(np.float64), camera)


def score_body(reconstruction, truth: dict, true_masks: np.ndarray, true_surface) -> dict[str, float]:
    """Morphology errors and the body's silhouette and surface against the truth, from what the
    result carries (see the module docstring); ``true_surface`` is a callable giving
    :func:`true_surface_camera`'s (frames, meshes), called only when the result has a body."""
    errors = {}
    morphology = json.loads(reconstruction.spine_morphology_json)
    if morphology:
        true_morphology = truth["spine_morphology"]
        for key, name in (("lumbar_lordosis_deg", "lordosis"), ("thoracic_kyphosis_deg", "kyphosis")):
            errors[f"{name}_err_deg"] = abs(morphology[key] - true_morphology[key])
    if getattr(reconstruction, "betas", None) is None:
        return errors
    from .body.model import load_body_model
    from .report import body_masks, posed_vertices

    body = load_body_model(reconstruction.body_model)
    local = np.concatenate(
        [reconstruction.global_orient[:, None], reconstruction.body_pose.reshape(-1, 23, 3)], axis=1
    )
    vertices = posed_vertices(body, reconstruction.betas, local, reconstruction.transl)
    rendered = body_masks(vertices, body.faces, reconstruction.camera_K, true_masks.shape[:0:-1])
    errors["silhouette_iou"] = float(
        np.mean([silhouette_iou(a, b) for a, b in zip(rendered, true_masks, strict=True)])
    )
    errors["mask_psnr_db"] = psnr_db(rendered, true_masks)
    frames, true_meshes = true_surface()
    shift = (np.asarray(truth["joints_camera_m"])[frames, 0] - reconstruction.joints_m[frames, 0])[:, None]
    errors["surface_hausdorff_mm"] = float(
        np.mean([hausdorff_mm(v, t) for v, t in zip(vertices[frames] + shift, true_meshes, strict=True)])
    )
    return errors


def run_bench(folders: list[Path], progress: Progress, smoother_rows: bool = True) -> dict:
    """Run and score every available stage on each clip; the bench.json content."""
    from .keypoints import extract_keypoints

    stages, status = reconstruction_stages()
    clips, seconds = [], {"keypoints": 0.0, **{label: 0.0 for label in stages}}
    per_smoother: list[dict[str, dict[str, float]]] = []
    total_frames = 0
    for k, folder in enumerate(folders):
        truth = json.loads((folder / "truth.json").read_text())
        video = folder / "clip.mp4"
        total_frames += int(truth["video"]["frames"])
        errors: dict[str, float] = {}
        failures: dict[str, str] = {}
        phase = None  # the estimated thorax-pelvis transverse phase, when a stage ran
        estimated = None  # the estimated metrics block, when a stage ran
        with progress.stage(k / len(folders), (k + 1) / len(folders), folder.name) as clip_progress:
            start = time.perf_counter()
            try:
                # into the (empty) stage cache: the stages below start from these keypoints, so
                # their time is everything after the keypoints
                keypoints = extract_keypoints(video, progress=clip_progress)
                errors |= score_keypoints(keypoints, truth, read_masks(folder / "masks.npz"))
            except HMNError as exc:
                failures["keypoints"] = str(exc)
            seconds["keypoints"] += time.perf_counter() - start
            true_surface = functools.partial(true_surface_camera, truth)
            for label, function in stages.items():
                start = time.perf_counter()
                try:
                    reconstruction = function(video, clip_progress)
                    seconds[label] += time.perf_counter() - start
                    estimated = reconstruction_metrics(reconstruction, float(truth["fps"]))
                    errors |= score_reconstruction(reconstruction, truth, estimated)
                    phase = estimated["coordination_deg"]["transverse"]["mean"]
                    if smoother_rows and label == "fit":
                        per_smoother.append(smoother_errors(video, truth))
                    errors |= score_body(
                        reconstruction, truth, read_masks(folder / "masks.npz"), true_surface
                    )
                    for stage, value in getattr(reconstruction, "timing_s", {}).items():
                        seconds[f"{label}.{stage}"] = seconds.get(f"{label}.{stage}", 0.0) + value
                    # untimed: the same clip as a user giving the subject's height runs it
                    given = function(video, clip_progress, subject_height_m=float(truth["body"]["height_m"]))
                    errors |= height_given_errors(given, truth)
                except HMNError as exc:
                    seconds[label] += time.perf_counter() - start
                    failures[label] = str(exc)
        settings = truth.get("settings", {})
        walk = [settings.get(k) for k in ("seed", "body_seed", "view")]  # clips of one walk share these
        clips.append(
            {
                "name": folder.name,
                "view": settings.get("view", ""),
                "errors": errors,
                "failures": failures,
                "coordination": {
                    "walk": walk,
                    # the phase the clip was made with (None: the walk's default)
                    "true_phase_deg": settings.get("coordination_phase_deg"),
                    "phase_deg": phase,
                },
                "screening": None
                if estimated is None
                else {
                    "walk": walk,
                    "rom_scale": settings.get("lumbar_rom_scale", 1.0),
                    "asymmetry": settings.get("asymmetry", 0.0),
                    "lumbar_rom_deg": {
                        plane: estimated["lumbar_rom_deg"][plane]["mean"] for plane in LUMBAR_PLANES
                    },
                    "symmetry_index_pct": estimated["symmetry_index_pct"],
                },
            }
        )
    keys = sorted({key for clip in clips for key in clip["errors"]})
    summary = _mean_errors(clips, keys)
    by_view = {
        view: _mean_errors([c for c in clips if c["view"] == view], keys)
        for view in dict.fromkeys(c["view"] for c in clips)
    }
    smoothers = None
    if smoother_rows:
        rendered = {
            name: {
                key: float(np.mean([clip[name][key] for clip in per_smoother]))
                for key in per_smoother[0][name]
            }
            for name in (per_smoother[0] if per_smoother else {})
        }
        smoothers = {"rendered": rendered, "mocap": mocap_smoother_rows()}
    ranking = coordination_ranking(
        [c["coordination"] for c in clips if None not in c["coordination"].values()]
    )
    screening = screening_ranking([c["screening"] for c in clips if c["screening"] is not None])
    pipeline_seconds = sum(seconds[label] for label in stages)  # each: the pipeline after the keypoints
    return {
        "clips": clips,
        "summary": summary,
        "speed": {
            "keypoints_fps": total_frames / seconds["keypoints"] if seconds["keypoints"] else None,
            "pipeline_fps": total_frames / (seconds["keypoints"] + pipeline_seconds) if stages else None,
            "seconds_per_stage": seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            # pipeline fps / keypoints-only fps: the whole run's frames per second over MediaPipe's alone
            "pipeline_to_keypoints_fps_ratio": seconds["keypoints"]
            / (seconds["keypoints"] + pipeline_seconds)
            if stages and seconds["keypoints"]
            else None,
            "blender_keyframing_3000_s": _keyframing_seconds(),
        },
        "stages": status,
        "frames": total_frames,
        "summary_by_view": by_view,
        "coordination_ranking": ranking,
        "screening_ranking": screening,
        "smoothers": smoothers,
    }


def _mean_errors(clips: list[dict], keys: list[str]) -> dict[str, float]:
    return {
        key: float(np.mean(values))
        for key in keys
        if (values := [c["errors"][key] for c in clips if key in c["errors"]])
    }


def _keyframing_seconds() -> float | None:
    """Seconds to keyframe 3,000 frames of every bone in Blender (None without the bpy module)."""
    try:
        from .blender.build import time_keyframing
    except ImportError:
        return None
    return time_keyframing(3000)


def format_table(bench: dict) -> str:
    """One table: a row per clip and the mean, a column per error; then stages and speed."""
    keys = list(bench["summary"])
    name_width = max(
        [len(c["name"]) for c in bench["clips"]] + [len(f"mean {c['view']}") for c in bench["clips"]]
    )
    header = "clip".ljust(name_width) + "".join(f" {key:>{max(len(key), 8)}}" for key in keys)
    lines = [header, "-" * len(header)]
    by_view = bench.get("summary_by_view", {})
    rows = [
        *((c["name"], c["errors"]) for c in bench["clips"]),
        *((f"mean {view}", errors) for view, errors in by_view.items() if len(by_view) > 1),
        ("mean", bench["summary"]),
    ]
    for name, errors in rows:
        cells = "".join(
            f" {errors[key]:>{max(len(key), 8)}.2f}" if key in errors else f" {'-':>{max(len(key), 8)}}"
            for key in keys
        )
        lines.append(name.ljust(name_width) + cells)
    for clip in bench["clips"]:
        for stage, message in clip["failures"].items():
            lines.append(f"{clip['name']}: {stage} failed: {message}")
    for stage, state in bench["stages"].items():
        lines.append(f"stage {stage}: {state}")
    ranking = bench.get("coordination_ranking")
    if ranking:
        lines.append(f"thorax-pelvis phase ranking: {_ranking_text(ranking)}")
    lines += _screening_lines(bench.get("screening_ranking"))
    lines += format_smoothers(bench.get("smoothers"))
    speed = bench["speed"]
    per_stage = ", ".join(
        f"{stage} {value:.1f} s ({1000 * value / max(bench['frames'], 1):.0f} ms/frame)"
        for stage, value in speed["seconds_per_stage"].items()
    )
    lines.append(f"seconds per stage over {bench['frames']} frames: {per_stage}")
    lines.append(f"peak RSS {speed['peak_rss_mb']:.0f} MB")
    if speed.get("pipeline_to_keypoints_fps_ratio") is not None:
        lines.append(f"pipeline fps / keypoints fps: {speed['pipeline_to_keypoints_fps_ratio']:.2f}")
    if speed.get("blender_keyframing_3000_s") is not None:
        lines.append(
            f"Blender keyframing, 3000 frames of all bones: {speed['blender_keyframing_3000_s']:.2f} s"
        )
    return "\n".join(lines)


# The README's columns (bench.md): error key -> column heading.
MARKDOWN_COLUMNS: dict[str, str] = {
    "mpjpe_mm": "MPJPE mm",
    "mpjpe_mm_height": "MPJPE mm (height)",
    "pa_mpjpe_mm": "PA-MPJPE mm",
    "pelvis_orientation_err_deg": "pelvis orient. err °",
    "pelvic_tilt_range_err_deg": "pelvic tilt range err °",
    "lumbar_rom_err_deg_sagittal": "lumbar ROM err sag °",
    "lumbar_rom_err_deg_frontal": "front. °",
    "lumbar_rom_err_deg_transverse": "transv. °",
    "symmetry_index_err_pct": "SI err pts",
    "walking_speed_err_pct": "speed err %",
    "walking_speed_err_pct_height": "speed err % (height)",
    "stride_length_err_pct_height": "stride err % (height)",
    "cadence_err_pct": "cadence err %",
    "relative_phase_err_deg_transverse": "phase err transv. °",
    "relative_phase_err_deg_frontal": "phase err front. °",
    "lordosis_err_deg": "lordosis err °",
    "kyphosis_err_deg": "kyphosis err °",
    "heel_strike_err_frames": "heel strike err fr",
    "silhouette_iou": "silhouette IoU",
    "spine_hausdorff_mm": "spine Hausdorff mm",
    "spine_hausdorff_mm_height": "spine Hausdorff mm (height)",
    "keypoints_px": "keypoints px",
}


def format_markdown(bench: dict) -> str:
    """The README's table: a row per clip, the mean per view (bold) and over all clips."""
    keys = [key for key in MARKDOWN_COLUMNS if key in bench["summary"]]
    lines = [
        "| clip | " + " | ".join(MARKDOWN_COLUMNS[key] for key in keys) + " |",
        "|---" * (len(keys) + 1) + "|",
    ]
    rows = [
        *((c["name"], c["errors"]) for c in bench["clips"]),
        *((f"**mean {view}**", errors) for view, errors in bench.get("summary_by_view", {}).items()),
        ("**mean**", bench["summary"]),
    ]
    for name, errors in rows:
        cells = [
            "-" if key not in errors else f"{errors[key]:.{2 if key == 'silhouette_iou' else 1}f}"
            for key in keys
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    ranking = bench.get("coordination_ranking")
    if ranking:
        lines += ["", f"Thorax-pelvis phase ranking: {_ranking_text(ranking)}."]
    screening = _screening_lines(bench.get("screening_ranking"))
    if screening:
        lines += ["", *(f"{line[0].upper()}{line[1:]}." for line in screening)]
    return "\n".join(lines) + "\n"


def _screening_lines(screening: dict | None) -> list[str]:
    """The screening ranking (:func:`screening_ranking`) as sentences."""
    lines = []
    if screening and "rom_scale" in screening:
        shares = ", ".join(
            f"{plane} {100 * ranked['ranked_correctly']:.0f}% of {ranked['pairs']:.0f}"
            for plane, ranked in screening["rom_scale"].items()
        )
        lines.append(
            "lumbar ROM ranking: pairs of clips of one walk made at different --lumbar-rom-scale whose "
            f"estimated ROMs order as made, per plane in the views that show it: {shares}"
        )
    if screening and "asymmetry" in screening:
        twins = screening["asymmetry"]
        lines.append(
            f"asymmetry ranking: {100 * twins['ranked_correctly']:.0f}% of {twins['pairs']:.0f} "
            "--asymmetry clips get a higher symmetry index than their symmetric twin (by its lateral "
            f"bending part alone {100 * twins['ranked_correctly_lateral_bending']:.0f}%, by its axial "
            f"rotation part alone {100 * twins['ranked_correctly_axial_rotation']:.0f}%)"
        )
    return lines


def _ranking_text(ranking: dict) -> str:
    return (
        f"{100 * ranking['ranked_correctly']:.0f}% of {ranking['pairs']:.0f} pairs of clips of one walk "
        f"(made >= {RANK_MIN_DIFFERENCE_DEG:.0f} deg apart) ranked as they were made"
    )


def format_smoothers(smoothers: dict | None) -> list[str]:
    """Per smoother: MPJPE and acceleration error on the rendered clips' fits (mm/s^2) and on the
    held-out motion-capture subjects (mm/frame^2), each acceleration error also as a share of the
    unsmoothed one."""
    if not smoothers:
        return []
    sources = (
        (smoothers.get("rendered") or {}, "accel_err_mm_s2"),
        ({row["smoother"]: row for row in smoothers.get("mocap") or []}, "accel_err_mm"),
    )
    lines = [
        f"{'smoother':16s}{'clips MPJPE':>14s}{'clips accel':>14s}{'x none':>8s}"
        f"{'mocap MPJPE':>14s}{'mocap accel':>14s}{'x none':>8s}"
    ]
    for name in dict.fromkeys(name for rows, _ in sources for name in rows):
        cells = ""
        for rows, accel in sources:
            row, none = rows.get(name), rows.get("none")
            if row is None:
                cells += f"{'-':>14s}{'-':>14s}{'-':>8s}"
                continue
            ratio = row[accel] / none[accel] if none and none[accel] else float("nan")
            cells += f"{row['mpjpe_mm']:>14.1f}{row[accel]:>14.2f}{ratio:>8.2f}"
        lines.append(f"{name:16s}{cells}")
    return lines


def format_scale(scale: dict) -> str:
    """The scale checks (:func:`..scale.scale_checks`) as lines of text."""
    lines = [
        f"batch throughput, {workers} worker(s): {entry['videos_per_hour']:.0f} videos/h "
        f"({entry['seconds']:.0f} s, {entry['failed']} failed)"
        for workers, entry in scale["throughput"].items()
    ]
    lines.append(f"2 workers over 1: {scale['speedup_2_over_1']:.2f}x")
    on_ray = scale["ray"]
    lines.append(
        f"the same batch on a local Ray instance: {on_ray['seconds']:.0f} s, {on_ray['failed']} failed, "
        f"cohort.csv {'identical to' if on_ray['cohort_identical'] else 'DIFFERS from'} the 2 workers'"
    )
    memory = ", ".join(f"{clip} clip {mb:.0f} MB" for clip, mb in scale["peak_rss_mb"].items())
    lines.append(
        f"peak memory of one run at 720p: {memory}; long / short {scale['long_over_short_memory']:.3f}"
    )
    return "\n".join(lines)


def _handle(args: argparse.Namespace, progress: Progress) -> int:
    out = Path(args.out)
    if args.scale_checks:
        from .scale import scale_checks

        if args.set is not None:
            raise HMNError("--scale-checks", "makes its own clips from the sample walk: drop --set")
        with progress.stage(0.0, 1.0, "scale checks"):
            scale = scale_checks(out / "scale", clips=args.scale_videos, long_s=args.scale_long_s)
        write_text_atomic(out / "scale.json", json.dumps(scale, indent=1))
        print("\n" + format_scale(scale))
        return 0
    if args.set is not None:
        folders = _read_set(Path(args.set))
        scoring_start = 0.0
    else:
        if args.clips < 1:
            raise HMNError("--clips", f"needs at least 1 clip, got {args.clips}")
        with progress.stage(0.0, 0.5, "synth") as stage:
            if args.coordination_walks < 0:
                raise HMNError("--coordination-walks", f"must be 0 or more, got {args.coordination_walks}")
            if args.screening_walks < 0:
                raise HMNError("--screening-walks", f"must be 0 or more, got {args.screening_walks}")
            design = (
                clip_design(args.clips, args.frames, *args.size)
                + coordination_design(args.coordination_walks, args.frames, *args.size)
                + screening_design(args.screening_walks, args.frames, *args.size)
            )
            folders = _generated_set(out, design, stage)
        scoring_start = 0.5
    # an empty stage cache: the speed is the work's, not the cache's (the smoother rows reuse its fits)
    with progress.stage(scoring_start, 1.0, "bench") as stage, fresh_cache():
        bench = run_bench(folders, stage, smoother_rows=not args.no_smoother_rows)
    write_text_atomic(out / "bench.json", json.dumps(bench, indent=1))
    write_text_atomic(out / "bench.md", format_markdown(bench))
    print("\n" + format_table(bench))
    return 0


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    from .synth.command import _size

    parser = subparsers.add_parser("bench", help="score the pipeline's stages on rendered ground-truth clips")
    parser.add_argument("--out", required=True, help="output folder (bench.json; generated clips in clips/)")
    parser.add_argument("--clips", type=int, default=6, help="clips to generate (default 6)")
    parser.add_argument(
        "--coordination-walks",
        type=int,
        default=2,
        help="side-view walks rendered with thorax-pelvis phases "
        f"{', '.join(f'{p:.0f}' for p in COORDINATION_PHASES_DEG)} deg, for the phase ranking (default 2)",
    )
    parser.add_argument(
        "--screening-walks",
        type=int,
        default=5,
        help=f"walks rendered in the {' and '.join(SCREENING_VIEWS)} views at --lumbar-rom-scale "
        f"{', '.join(f'{s:g}' for s in SCREENING_SCALES)} and obliquely with --asymmetry "
        f"{SCREENING_ASYMMETRY:g}, for the screening rankings (default 5)",
    )
    parser.add_argument("--set", help="a folder of clips made by synth, instead of generating")
    parser.add_argument(
        "--no-smoother-rows",
        action="store_true",
        help="leave out the per-smoother rows (each smoother on every clip's cached fit, and on the "
        "held-out motion-capture subjects)",
    )
    parser.add_argument(
        "--scale-checks",
        action="store_true",
        help="instead of the accuracy bench: batch throughput on 1 and 2 workers, the same batch's "
        "cohort.csv on a local Ray instance, and the peak memory of a long against a 1-minute 720p "
        "clip (DIR/scale.json)",
    )
    parser.add_argument("--scale-videos", type=int, default=20, help="videos in the throughput batch")
    parser.add_argument("--scale-long-s", type=float, default=600.0, help="the long clip's seconds")
    parser.add_argument("--frames", type=int, default=90, help="frames per generated clip")
    parser.add_argument("--size", type=_size, default=(640, 480), help="WIDTHxHEIGHT of generated clips")
    parser.set_defaults(handler=_handle)
