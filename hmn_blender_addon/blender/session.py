"""What the add-on's operators do, as plain functions and one run object (testable headless).

- :func:`load_into_scene`: a run's ``reconstruction.npz`` (and ``report.json`` beside it) as a
  subject in the open file (Load Reconstruction; also the last step of Reconstruct).
- :class:`ReconstructionRun`: Reconstruct from Video: the pipeline in a worker thread
  (:class:`...background.BackgroundRun`), a progress bar pumped from the operator's timer,
  cancel, and on success the scene built on the main thread plus ``scene.blend`` in the output
  folder. Nothing touches the scene or the output folder before the run has succeeded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import bpy

from ..background import BackgroundRun
from ..errors import HMNError
from ..reconstruction import load_reconstruction
from .build import build_scene, write_scene_blend
from .progress import WindowManagerProgress

RECONSTRUCTION_FILE = "reconstruction.npz"
REPORT_FILE = "report.json"
BLEND_FILE = "scene.blend"


def default_output_dir(video_path: str | os.PathLike) -> Path:
    """``<video folder>/<video stem>_hmn``: where a run's outputs go unless the user chose a folder."""
    video = Path(video_path)
    return video.with_name(f"{video.stem}_hmn")


def read_report(npz_path: Path) -> dict:
    """``report.json`` beside ``npz_path`` (empty if there is none)."""
    path = npz_path.with_name(REPORT_FILE)
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HMNError(path, f"not a readable report ({exc})") from exc


def load_into_scene(scene: bpy.types.Scene, npz_path: str | os.PathLike) -> tuple[bpy.types.Object, dict]:
    """Build the subject of ``npz_path`` in ``scene``; returns (armature, report).

    Everything is read and checked before the scene changes, so a bad file leaves it untouched.
    """
    npz_path = Path(npz_path).resolve()
    reconstruction = load_reconstruction(npz_path)
    report = read_report(npz_path)
    armature, _, _ = build_scene(reconstruction, report, scene, reconstruction_path=npz_path)
    return armature, report


class ReconstructionRun:
    """One Reconstruct from Video, driven by a modal operator's timer (or a test's loop)."""

    def __init__(
        self,
        window_manager: bpy.types.WindowManager,
        video_path: str | os.PathLike,
        out_dir: str | os.PathLike,
        settings,
    ) -> None:
        video = Path(video_path)
        if not video.is_file():
            raise HMNError(video, "video file not found")
        self.job = BackgroundRun(video, out_dir, settings)
        self.bar = WindowManagerProgress(window_manager, self.job.sink)
        self.job.start()

    @property
    def fraction(self) -> float:
        return self.bar.fraction

    def tick(self) -> bool:
        """Move the progress bar to the newest report; True once the worker has ended."""
        self.bar.pump()
        return self.job.done

    def cancel(self) -> None:
        self.job.cancel()

    def finish(self, scene: bpy.types.Scene) -> tuple[bpy.types.Object, dict]:
        """After :meth:`tick` returned True: raise the run's error (``Cancelled`` included), or build
        the subject in ``scene`` and write ``scene.blend`` beside the reconstruction."""
        self.bar.end()
        if self.job.error is not None:
            raise self.job.error
        if self.job.result is None:
            raise HMNError(self.job.video_path, "the run ended without a result")
        npz_path = self.job.out_dir / RECONSTRUCTION_FILE
        armature, report = load_into_scene(scene, npz_path)
        write_scene_blend(load_reconstruction(npz_path), report, self.job.out_dir / BLEND_FILE)
        return armature, report
