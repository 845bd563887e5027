"""The command line: ``python -m hmn_blender_addon <command>`` (also installed as ``hmn``).

Each command lives beside the stage it drives and registers itself through a function
``add_cli(subparsers)`` that adds its sub-parser and sets ``handler(args, progress) -> int``.
Every command prints a progress bar on a terminal, exits 0 on success and, on failure, prints
one line ``hmn: error: <input>: <problem>`` and exits 2 (130 when interrupted).
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
from collections.abc import Callable, Sequence

from . import __version__
from .errors import Cancelled, HMNError
from .progress import Progress, terminal_sink

# Modules (relative to this package) whose ``add_cli`` contributes a command, in help order.
COMMAND_MODULES: tuple[str, ...] = (
    ".info",
    ".pipeline",
    ".body.build",
    ".keypoints",
    ".synth.command",
    ".bench",
    ".batch",
)

Handler = Callable[[argparse.Namespace, Progress], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hmn",
        description="HumanMoveNet: gait video -> 3D body, dynamic spine and low-back-pain metrics.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name, __package__).add_cli(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    progress = Progress(None if args.quiet else terminal_sink(args.command))
    if threading.current_thread() is not threading.main_thread():
        return execute(args.handler, args, progress)
    interrupted = threading.Event()

    def interrupt(signum, frame) -> None:
        # Ctrl-C: a KeyboardInterrupt as usual, and the progress cancelled too, so that the work
        # stops at its next report should a library swallow the KeyboardInterrupt
        interrupted.set()
        progress.cancel()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        return execute(args.handler, args, progress, interrupted)
    finally:
        signal.signal(signal.SIGINT, previous)


def execute(
    handler: Handler,
    args: argparse.Namespace,
    progress: Progress,
    interrupted: threading.Event | None = None,
) -> int:
    """Run a command's handler and turn failures into the exit codes and one-line messages;
    ``interrupted`` is set when Ctrl-C was pressed (a cancellation is then reported as such)."""
    try:
        return int(handler(args, progress) or 0)
    except Cancelled as err:
        print(f"\nhmn: {'interrupted' if interrupted and interrupted.is_set() else err}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("\nhmn: interrupted", file=sys.stderr)
        return 130
    except HMNError as err:
        print(f"\nhmn: error: {err}", file=sys.stderr)
        return 2
    except ImportError as err:
        # Ctrl-C while a C extension (mediapipe) initialises surfaces as "ImportError: initialization
        # failed" caused by the KeyboardInterrupt: it is an interruption, not a broken install
        if isinstance(err.__cause__, KeyboardInterrupt):
            print("\nhmn: interrupted", file=sys.stderr)
            return 130
        raise
