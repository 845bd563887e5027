"""Progress reporting and cancellation through one callback.

Long work takes a :class:`Progress`, calls ``progress(fraction, message)`` now and then, and
splits itself into stages with :meth:`Progress.stage`. The sink behind it is a plain callable
``(fraction, message) -> None``: a terminal bar (:func:`terminal_sink`), a queue drained by a
Blender modal operator (:class:`QueueSink`), or a test's list. Cancellation is a flag checked on
every report, so work stops at the next report after :meth:`Progress.cancel`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .errors import Cancelled

Sink = Callable[[float, str], None]


class Progress:
    """Maps the fractions of nested stages onto [0, 1] and checks for cancellation.

    ``Progress(sink)`` covers [0, 1]; ``with progress.stage(0.2, 0.7, "fitting") as sub:`` gives a
    ``sub`` whose [0, 1] is [0.2, 0.7] of the parent, sharing its cancel flag.
    """

    def __init__(
        self,
        sink: Sink | None = None,
        *,
        start: float = 0.0,
        end: float = 1.0,
        cancel_event: threading.Event | None = None,
        prefix: str = "",
    ) -> None:
        self._sink = sink
        self._start = start
        self._end = end
        self._prefix = prefix
        self.cancel_event = cancel_event if cancel_event is not None else threading.Event()

    def __call__(self, fraction: float, message: str = "") -> None:
        """Report ``fraction`` (0..1) of this stage done; raises :class:`Cancelled` if asked to."""
        if self.cancel_event.is_set():
            raise Cancelled()
        if self._sink is not None:
            clamped = min(max(float(fraction), 0.0), 1.0)
            text = f"{self._prefix}: {message}" if self._prefix and message else (message or self._prefix)
            self._sink(self._start + (self._end - self._start) * clamped, text)

    def cancel(self) -> None:
        """Ask the work to stop at its next report."""
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    @contextmanager
    def stage(self, start: float, end: float, name: str = "") -> Iterator[Progress]:
        """A child reporter covering [start, end] of this one; reports 0 on entry and 1 on exit."""
        span = self._end - self._start
        child = Progress(
            self._sink,
            start=self._start + span * start,
            end=self._start + span * end,
            cancel_event=self.cancel_event,
            prefix=name or self._prefix,
        )
        child(0.0, "started")
        yield child
        child(1.0, "done")


def terminal_sink(description: str = "HumanMoveNet", disable: bool | None = None) -> Sink:
    """A tqdm bar on stderr driven by ``(fraction, message)``; silent when not on a terminal."""
    from tqdm import tqdm

    bar = tqdm(total=1000, desc=description, unit="‰", disable=disable, leave=True)

    def sink(fraction: float, message: str) -> None:
        target = round(fraction * 1000)
        if target > bar.n:
            bar.update(target - bar.n)
        if message:
            bar.set_postfix_str(message, refresh=False)
        if fraction >= 1.0:
            bar.close()

    return sink


class QueueSink:
    """Hands reports from a worker thread to the thread that owns the UI.

    Blender's API is not thread-safe, so the worker only enqueues; a timer on Blender's main
    thread calls :meth:`latest` and updates the progress bar.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[float, str]] = queue.SimpleQueue()

    def __call__(self, fraction: float, message: str) -> None:
        self._queue.put((fraction, message))

    def latest(self) -> tuple[float, str] | None:
        """The newest report since the last call, or None if there was none."""
        item = None
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return item
