"""``run`` in a worker thread, for a UI that must not freeze (the add-on's Reconstruct operator).

The worker reports into a :class:`~.progress.QueueSink` that the UI thread drains; cancelling sets
the :class:`~.progress.Progress` flag, so the work stops at its next report. ``run`` stages its
outputs and moves them in only on success; an output folder that did not exist before a failed or
cancelled run is removed again if the run left it empty, so the folder is exactly as it was.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path

from .progress import Progress, QueueSink


class BackgroundRun:
    """``pipeline.run(video, out_dir, settings)`` on a daemon thread (without writing scene.blend:
    Blender data may only be touched on Blender's main thread, which builds the scene itself)."""

    def __init__(self, video_path: str | os.PathLike, out_dir: str | os.PathLike, settings) -> None:
        self.video_path = Path(video_path)
        self.out_dir = Path(out_dir)
        self.settings = dataclasses.replace(settings, write_blend=False)
        self.sink = QueueSink()
        self.progress = Progress(self.sink)
        self.result = None
        self.error: BaseException | None = None
        self._out_dir_existed = self.out_dir.exists()
        self._thread = threading.Thread(target=self._work, name="HumanMoveNet run", daemon=True)

    def start(self) -> BackgroundRun:
        self._thread.start()
        return self

    def _work(self) -> None:
        try:
            from .pipeline import run

            self.result = run(self.video_path, self.out_dir, self.settings, self.progress)
        except BaseException as exc:  # handed to the UI thread, which reports it
            self.error = exc
            if not self._out_dir_existed and self.out_dir.is_dir() and not any(self.out_dir.iterdir()):
                self.out_dir.rmdir()

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def cancel(self) -> None:
        """Ask the run to stop at its next progress report."""
        self.progress.cancel()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the run ends (or ``timeout_s`` passes); True if it ended."""
        self._thread.join(timeout_s)
        return self.done
