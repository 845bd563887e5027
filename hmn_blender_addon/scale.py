"""The scale checks of a cohort (issue 10), for the bench: batch throughput on 1 and 2 workers and
the peak memory of a long against a short clip.

Clips are cut from the embedded sample walk: distinct windows (so the stage caches never share
work between them) or the walk looped to any duration and size. Every measurement runs with an
empty stage cache of its own, so that it measures the work and not the cache.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .batch import COHORT_FILE, run_batch
from .cache import fresh_cache
from .pipeline import SAMPLE_CLIP, RunSettings


def sample_frames() -> tuple[list[np.ndarray], float]:
    """The sample clip's frames (BGR) and its frame rate."""
    import cv2

    capture = cv2.VideoCapture(str(SAMPLE_CLIP))
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames = []
    while (frame := capture.read()[1]) is not None:
        frames.append(frame)
    capture.release()
    return frames, fps


def write_clip(
    path: Path, frames: Sequence[np.ndarray], fps: float, size: tuple[int, int] | None = None
) -> Path:
    """BGR frames as an MPEG-4 MP4, resized to ``size`` (width, height) when given."""
    import cv2

    size = size or (frames[0].shape[1], frames[0].shape[0])
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for frame in frames:
        writer.write(frame if frame.shape[1::-1] == size else cv2.resize(frame, size))
    writer.release()
    return path


def window_clips(folder: Path, count: int, frames_each: int = 60) -> list[Path]:
    """``count`` distinct clips of ``frames_each`` frames: windows of the sample starting one frame apart."""
    frames, fps = sample_frames()
    if count + frames_each - 1 > len(frames):
        frames = frames + frames[::-1]  # walk back, so that windows stay distinct
    folder.mkdir(parents=True, exist_ok=True)
    return [write_clip(folder / f"clip_{i:02d}.mp4", frames[i : i + frames_each], fps) for i in range(count)]


def looped_clip(path: Path, seconds: float, size: tuple[int, int] = (1280, 720)) -> Path:
    """The sample walk there and back, repeated to ``seconds``, at ``size``."""
    frames, fps = sample_frames()
    cycle = frames + frames[::-1]
    count = round(seconds * fps)
    return write_clip(path, [cycle[i % len(cycle)] for i in range(count)], fps, size)


def throughput(
    videos: Sequence[Path], out_dir: Path, settings: RunSettings, worker_counts: Sequence[int] = (1, 2)
) -> dict[str, dict]:
    """Videos per hour of a batch of ``videos`` for each worker count (fresh cache each time)."""
    results = {}
    for workers in worker_counts:
        with fresh_cache():
            result = run_batch(videos, out_dir / f"workers_{workers}", settings, workers=workers)
        results[str(workers)] = {
            "workers": result.workers,
            "seconds": round(result.seconds, 2),
            "videos_per_hour": round(len(videos) * 3600.0 / result.seconds, 1),
            "failed": len(result.failures),
        }
    return results


def ray_batch(videos: Sequence[Path], out_dir: Path, settings: RunSettings, reference_dir: Path) -> dict:
    """The batch of ``videos`` on a local Ray instance of 2 CPUs (fresh cache): its seconds, its
    failures, and whether its cohort.csv is byte for byte the one in ``reference_dir``."""
    import ray

    try:
        with fresh_cache():
            result = run_batch(videos, out_dir, settings, workers=2, ray_address="local")
    finally:
        ray.shutdown()
    identical = (out_dir / COHORT_FILE).read_bytes() == (reference_dir / COHORT_FILE).read_bytes()
    return {
        "seconds": round(result.seconds, 2),
        "failed": len(result.failures),
        "cohort_identical": identical,
    }


def peak_memory_mb(video: Path, out_dir: Path, settings: RunSettings) -> float:
    """Peak resident memory (MB) of one worker process running ``video`` from a fresh cache."""
    with fresh_cache():
        result = run_batch([video], out_dir, settings, workers=1)
    (outcome,) = result.outcomes
    if outcome.status != "done":
        raise RuntimeError(outcome.error)
    return round(outcome.peak_rss_mb, 1)


def scale_checks(
    out_dir: str | os.PathLike,
    clips: int = 20,
    short_s: float = 60.0,
    long_s: float = 600.0,
    settings: RunSettings | None = None,
) -> dict:
    """The bench's scale entry: throughput of ``clips`` short clips on 1 and 2 workers (and their
    ratio), the same batch on a local Ray instance (its cohort.csv against the 2 workers'), and
    the peak memory of a ``long_s`` against a ``short_s`` 720p clip (and their ratio)."""
    settings = settings or RunSettings(write_blend=False)
    out = Path(out_dir)
    videos = window_clips(out / "clips", clips)
    rates = throughput(videos, out / "throughput", settings)
    on_ray = ray_batch(videos, out / "ray", settings, out / "throughput" / "workers_2")
    memory = {
        f"{seconds:g}s": peak_memory_mb(
            looped_clip(out / f"clip_{seconds:g}s.mp4", seconds), out / f"memory_{seconds:g}s", settings
        )
        for seconds in (short_s, long_s)
    }
    return {
        "throughput": rates,
        "speedup_2_over_1": round(rates["2"]["videos_per_hour"] / rates["1"]["videos_per_hour"], 2),
        "ray": on_ray,
        "peak_rss_mb": memory,
        "long_over_short_memory": round(memory[f"{long_s:g}s"] / memory[f"{short_s:g}s"], 3),
    }
