"""The foundation's behaviour: one-line errors, progress with cancellation, atomic writes, CLI."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from hmn_blender_addon import cli
from hmn_blender_addon.atomic import atomic_path, write_text_atomic
from hmn_blender_addon.errors import Cancelled, HMNError
from hmn_blender_addon.progress import Progress, QueueSink
from hmn_blender_addon.skeleton import SMPL_PARENTS, kinematic_adjacency


def test_error_names_input_and_problem_on_one_line():
    err = HMNError("clips/walk 1.mp4", "no person found in\n 180 of 200 frames")
    assert str(err) == "clips/walk 1.mp4: no person found in 180 of 200 frames"
    assert err.subject == "clips/walk 1.mp4"


def test_nested_stages_map_onto_the_whole_range():
    reports = []
    progress = Progress(lambda fraction, message: reports.append((round(fraction, 6), message)))
    with progress.stage(0.2, 0.6, "fitting") as fitting:
        fitting(0.5, "half")
        with fitting.stage(0.5, 1.0, "refine") as refine:
            refine(0.5, "quarter")
    assert (0.2, "fitting: started") in reports
    assert (0.4, "fitting: half") in reports
    assert (0.5, "refine: quarter") in reports
    assert reports[-1] == (0.6, "fitting: done")


def test_cancel_stops_work_at_the_next_report():
    progress = Progress()
    done = []
    progress(0.1, "first")
    progress.cancel()
    with pytest.raises(Cancelled, match="cancelled by the user"):
        for step in range(10):
            progress(step / 10, "working")
            done.append(step)
    assert done == []


def test_queue_sink_hands_the_newest_report_to_the_ui_thread():
    sink = QueueSink()
    progress = Progress(sink)
    worker = threading.Thread(target=lambda: [progress(i / 4, f"step {i}") for i in range(5)])
    worker.start()
    worker.join()
    assert sink.latest() == (1.0, "step 4")
    assert sink.latest() is None


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out" / "report.json"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("stage failed")
    assert list((tmp_path / "out").iterdir()) == []
    write_text_atomic(target, "{}")
    assert target.read_text() == "{}"
    assert target.stat().st_mode & 0o044 == 0o044  # readable by others, unlike mkstemp's 0600
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["report.json"]


def test_atomic_write_into_a_file_instead_of_a_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "out"
    blocker.write_text("I am a file")
    with pytest.raises(HMNError, match="cannot create the output folder"):
        write_text_atomic(blocker / "report.json", "{}")


def test_kinematic_adjacency_matches_the_smpl_tree():
    adjacency = kinematic_adjacency()
    assert adjacency.shape == (24, 24)
    assert (adjacency == adjacency.T).all()
    assert adjacency.sum() == 2 * 23  # a tree of 24 joints has 23 edges
    assert adjacency[12, 15] == 1 and adjacency[9, 13] == 1 and adjacency[0, 12] == 0
    assert SMPL_PARENTS[15] == 12


def test_cli_reports_an_hmn_error_as_one_line_and_exit_2(capsys):
    def failing(args, progress):
        raise HMNError("missing.mp4", "file not found")

    assert cli.execute(failing, None, Progress()) == 2
    assert capsys.readouterr().err.strip() == "hmn: error: missing.mp4: file not found"


def test_cli_reports_cancellation_with_exit_130(capsys):
    def cancelled(args, progress):
        progress.cancel()
        progress(0.5, "never shown")

    assert cli.execute(cancelled, None, Progress()) == 130
    assert capsys.readouterr().err.strip() == "hmn: run: cancelled by the user"


def test_ctrl_c_inside_an_extensions_initialisation_is_an_interruption(capsys):
    """mediapipe's C extension turns a KeyboardInterrupt during its import into an ImportError."""

    def importing(args, progress):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise ImportError("initialization failed") from exc

    assert cli.execute(importing, None, Progress()) == 130
    assert capsys.readouterr().err.strip() == "hmn: interrupted"

    def broken(args, progress):
        raise ImportError("no module named x")

    with pytest.raises(ImportError, match="no module named x"):
        cli.execute(broken, None, Progress())


def test_cli_runs_as_a_module_and_lists_its_commands():
    result = subprocess.run(
        [sys.executable, "-m", "hmn_blender_addon", "--quiet", "info"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "humanmovenet 0.1.0" in result.stdout
    assert "mediapipe 0.10.21" in result.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "hmn_blender_addon", "nonsense"], capture_output=True, text=True
    )
    assert bad.returncode == 2
    assert "invalid choice: 'nonsense'" in bad.stderr
