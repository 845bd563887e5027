"""The one error type of the project: it names the input and the problem."""

from __future__ import annotations

import os


class HMNError(Exception):
    """A failure the user can act on.

    ``str(err)`` is one line, ``"<input>: <problem>"``, suitable for a terminal, Blender's status
    bar and a cohort's failure list.
    """

    def __init__(self, subject: str | os.PathLike, problem: str) -> None:
        self.subject = os.fspath(subject)
        self.problem = " ".join(str(problem).split())
        super().__init__(f"{self.subject}: {self.problem}")


class Cancelled(HMNError):
    """Raised inside long work when the user asked to stop (Esc in Blender, Ctrl-C)."""

    def __init__(self, subject: str | os.PathLike = "run") -> None:
        super().__init__(subject, "cancelled by the user")
