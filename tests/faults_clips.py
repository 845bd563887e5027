"""Short clips shared by the fault and batch tests: 40 frames (1.33 s at 30 fps) of the sample walk.

Clips are re-encoded with cv2.VideoWriter (mp4v), which writes the same bytes every time, so the
stage caches (keyed by content) stay warm between sessions. Fixtures that build them are imported
by the test modules; the module-level cache makes each clip once per session.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

from hmn_blender_addon.fitting import FitSettings
from hmn_blender_addon.pipeline import SAMPLE_CLIP, RunSettings

QUICK = RunSettings(smoother="butterworth", fit=FitSettings(iterations=60), write_blend=False)
FRAMES = 40
FPS = 30.0
_made: dict[str, object] = {}


def write_frames(path: Path, frames: Sequence[np.ndarray], fps: float = FPS) -> Path:
    """BGR frames -> an MPEG-4 MP4 at ``path``."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def sample_frames() -> list[np.ndarray]:
    """The first FRAMES frames of the sample clip (BGR, 640 x 480)."""
    if "frames" not in _made:
        capture = cv2.VideoCapture(str(SAMPLE_CLIP))
        frames = [capture.read()[1] for _ in range(FRAMES)]
        capture.release()
        _made["frames"] = frames
    return _made["frames"]  # type: ignore[return-value]


def background() -> np.ndarray:
    """The empty scene: the per-pixel median over the frames (the walker moves on)."""
    return np.median(np.stack(sample_frames()[::4]), axis=0).astype(np.uint8)


@pytest.fixture(scope="session", name="short_clip")
def short_clip_fixture(tmp_path_factory) -> Path:
    """The shared 40-frame clip of the sample walker."""
    if "clip" not in _made:
        _made["clip"] = write_frames(tmp_path_factory.mktemp("clips") / "walk.mp4", sample_frames())
    return _made["clip"]  # type: ignore[return-value]
