"""``synth``: render one ground-truth gait clip (DESIGN.md sections 7 and 10).

``python -m hmn_blender_addon synth --out DIR --seed N [--view side|oblique|front] [--frames N]
[--fps N] [--size WxH] [--lumbar-rom-scale X] [--asymmetry X] [--coordination-phase DEG]
[--body-seed N] [--engine workbench|cycles] [--clothes] [--mocap-dir DIR]`` writes
``DIR/clip.mp4``, ``DIR/truth.json`` and ``DIR/masks.npz``. The same arguments give the same truth and frames.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import HMNError
from ..paths import PACKAGE_DIR
from ..progress import Progress
from .camera import VIEWS, Camera, make_camera
from .gait import GaitSettings, Motion, make_motion
from .truth import truth_dict, write_masks, write_truth

DEFAULT_MOCAP_DIR = (
    Path(os.environ.get("HMN_SHARED_DATA", PACKAGE_DIR.parent.parent / "shared" / "data"))
    / "mocap"
    / "cmu_walk"
)
CAMERA_POINTS_PER_FRAME = 300  # body vertices per frame used to frame the walk


@dataclass(frozen=True)
class SynthSettings:
    """Everything that defines a clip (the same settings give the same clip)."""

    seed: int
    body_seed: int
    view: str = "side"
    frames: int = 90
    fps: int = 30
    width: int = 640
    height: int = 480
    lumbar_rom_scale: float = 1.0
    asymmetry: float = 0.0
    coordination_phase_deg: float | None = None
    engine: str = "workbench"
    clothes: bool = False


@dataclass(frozen=True)
class Clip:
    """A rendered clip: its files, truth, motion (lab frame) and what Blender evaluated."""

    video_path: Path
    truth_path: Path
    masks_path: Path
    truth: dict
    motion: Motion
    masks: np.ndarray
    scene_vertebra_points: np.ndarray
    timing_s: dict[str, float]


def check_settings(settings: SynthSettings) -> None:
    """One-line errors for settings that cannot make a clip."""
    if settings.view not in VIEWS:
        raise HMNError("--view", f"must be one of {', '.join(VIEWS)}, not {settings.view!r}")
    if settings.frames < 8:
        raise HMNError("--frames", f"needs at least 8 frames, got {settings.frames}")
    if not 1 <= settings.fps <= 240:
        raise HMNError("--fps", f"must be 1 to 240, got {settings.fps}")
    if settings.width < 64 or settings.height < 48 or settings.width % 2 or settings.height % 2:
        raise HMNError(
            "--size", f"needs even sizes of at least 64x48, got {settings.width}x{settings.height}"
        )
    if not 0.0 <= settings.lumbar_rom_scale <= 3.0:
        raise HMNError("--lumbar-rom-scale", f"must be 0 to 3, got {settings.lumbar_rom_scale}")
    if not 0.0 <= settings.asymmetry < 1.0:
        raise HMNError("--asymmetry", f"must be at least 0 and below 1, got {settings.asymmetry}")
    phase = settings.coordination_phase_deg
    if phase is not None and not 0.0 <= phase <= 180.0:
        raise HMNError("--coordination-phase", f"must be 0 to 180 degrees, got {phase}")
    if settings.engine not in ("workbench", "cycles"):
        raise HMNError("--engine", f"must be workbench or cycles, not {settings.engine!r}")


def clip_truth(settings: SynthSettings, mocap_dir: Path = DEFAULT_MOCAP_DIR) -> tuple[Motion, Camera, dict]:
    """The motion, camera and truth of a clip, without rendering (deterministic)."""
    gait = GaitSettings(
        settings.seed,
        settings.body_seed,
        settings.frames,
        settings.fps,
        settings.lumbar_rom_scale,
        settings.asymmetry,
        settings.coordination_phase_deg,
    )
    motion = make_motion(gait, mocap_dir)
    rng = np.random.default_rng([settings.seed, 4])
    sample = motion.vertices_m[:, :: max(1, motion.vertices_m.shape[1] // CAMERA_POINTS_PER_FRAME)].reshape(
        -1, 3
    )
    camera = make_camera(settings.view, sample, settings.width, settings.height, rng)
    return motion, camera, truth_dict(motion, camera, float(settings.fps), asdict(settings))


def make_clip(
    settings: SynthSettings, out_dir: Path, progress: Progress, mocap_dir: Path = DEFAULT_MOCAP_DIR
) -> Clip:
    """Generate, render and write one clip into ``out_dir``."""
    from ..blender.synth_render import RenderJob, render_clip

    check_settings(settings)
    out_dir = Path(out_dir)
    timing = {}
    start = time.perf_counter()
    progress(0.0, "body and motion")
    motion, camera, truth = clip_truth(settings, mocap_dir)
    timing["motion"] = time.perf_counter() - start
    job = RenderJob(
        vertices_m=motion.vertices_m,
        faces=motion.faces,
        vertebrae_m=motion.vertebrae_m,
        vertebra_rotations=motion.vertebra_rotations,
        face_regions=motion.face_regions,
        clothes=settings.clothes,
        K=camera.K,
        world_to_camera=camera.world_to_camera,
        width=settings.width,
        height=settings.height,
        fps=settings.fps,
        engine=settings.engine,
        seed=settings.seed,
    )
    start, start_cpu = time.perf_counter(), time.process_time()
    video_path, truth_path, masks_path = out_dir / "clip.mp4", out_dir / "truth.json", out_dir / "masks.npz"
    with progress.stage(0.1, 1.0, "render") as stage, atomic_path(video_path) as tmp_video:
        rendered = render_clip(job, tmp_video, stage)
        write_masks(masks_path, rendered.masks)
        write_truth(truth_path, truth)
    timing["render"] = time.perf_counter() - start
    timing["render_cpu"] = time.process_time() - start_cpu  # all threads: independent of other load
    return Clip(
        video_path,
        truth_path,
        masks_path,
        truth,
        motion,
        rendered.masks,
        rendered.scene_vertebra_points,
        timing,
    )


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    return width, height


def _handle(args: argparse.Namespace, progress: Progress) -> int:
    settings = SynthSettings(
        seed=args.seed,
        body_seed=args.seed if args.body_seed is None else args.body_seed,
        view=args.view,
        frames=args.frames,
        fps=args.fps,
        width=args.size[0],
        height=args.size[1],
        lumbar_rom_scale=args.lumbar_rom_scale,
        asymmetry=args.asymmetry,
        coordination_phase_deg=args.coordination_phase,
        engine=args.engine,
        clothes=args.clothes,
    )
    clip = make_clip(settings, Path(args.out), progress, Path(args.mocap_dir))
    metrics = clip.truth["metrics"]
    rom = metrics["lumbar_rom_deg"]
    print(
        f"\n{clip.video_path} ({settings.frames} frames, {settings.view} view, {clip.motion.source}); "
        f"lumbar ROM sagittal/frontal/transverse {rom['sagittal']['mean']:.1f}/{rom['frontal']['mean']:.1f}/"
        f"{rom['transverse']['mean']:.1f} deg over {metrics['cycles']['count']} cycles; "
        f"symmetry index {metrics['symmetry_index_pct']['spinal']:.1f}%; "
        f"speed {metrics['gait']['walking_speed_m_s']:.2f} m/s, cadence "
        f"{metrics['gait']['cadence_steps_per_min']:.0f} steps/min, thorax-pelvis transverse phase "
        f"{metrics['coordination_deg']['transverse']['mean']:.0f} deg; "
        f"motion {clip.timing_s['motion']:.1f} s, render {clip.timing_s['render']:.1f} s"
    )
    return 0


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("synth", help="render a ground-truth gait clip (clip.mp4 + truth.json)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seed", type=int, required=True, help="motion, trunk ranges and camera")
    parser.add_argument("--body-seed", type=int, help="phenotype and spine shape (default: --seed)")
    parser.add_argument("--view", default="side", choices=VIEWS)
    parser.add_argument("--frames", type=int, default=90)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--size", type=_size, default=(640, 480), help="WIDTHxHEIGHT (default 640x480)")
    parser.add_argument("--lumbar-rom-scale", type=float, default=1.0, help="1 = physiological lumbar ranges")
    parser.add_argument("--asymmetry", type=float, default=0.0, help="0 = symmetric; 0.3 = clearly antalgic")
    parser.add_argument(
        "--coordination-phase",
        type=float,
        metavar="DEG",
        help="thorax-pelvis transverse relative phase, 0 (in phase) to 180 (anti-phase); "
        "default: healthy walking's at the walk's speed",
    )
    parser.add_argument("--engine", default="workbench", choices=("workbench", "cycles"))
    parser.add_argument("--clothes", action="store_true", help="skin-tight shorts and top in seeded colours")
    parser.add_argument(
        "--mocap-dir",
        default=str(DEFAULT_MOCAP_DIR),
        help="CMU walks (*.bvh.gz + CMU-INDEX.md); where absent, a procedural walk",
    )
    parser.set_defaults(handler=_handle)
