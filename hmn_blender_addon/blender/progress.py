"""Blender's window-manager progress bar driven by the core's progress reports.

Work runs in a worker thread and reports into a :class:`~hmn_blender_addon.progress.QueueSink`;
a modal operator's timer calls :meth:`WindowManagerProgress.pump` on Blender's main thread (the
only thread allowed to touch ``bpy``), which moves the bar and returns the latest message.
"""

from __future__ import annotations

import bpy

from ..progress import QueueSink

_STEPS = 1000


class WindowManagerProgress:
    """Shows a :class:`QueueSink`'s reports on ``wm``'s progress bar (cursor/status bar)."""

    def __init__(self, window_manager: bpy.types.WindowManager, sink: QueueSink) -> None:
        self._wm = window_manager
        self._sink = sink
        self.fraction = 0.0
        self.message = ""
        self._wm.progress_begin(0, _STEPS)

    def pump(self) -> str:
        """Apply the newest report, if any; returns the current message."""
        latest = self._sink.latest()
        if latest is not None:
            self.fraction, self.message = latest
            self._wm.progress_update(round(self.fraction * _STEPS))
        return self.message

    def end(self) -> None:
        self._wm.progress_end()
