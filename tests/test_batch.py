"""``batch``: parallel runs, resuming, one bad video among good ones, a worker that dies, the
cohort table, group statistics against hand-computed values, and the same cohort through Ray."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from faults_clips import QUICK, short_clip_fixture  # noqa: F401
from scipy import stats

from hmn_blender_addon.batch import (
    COHORT_FILE,
    Job,
    Outcome,
    group_statistics,
    metric_columns,
    plan_jobs,
    read_groups,
    run_batch,
    subject_heights,
    worker_count,
)
from hmn_blender_addon.errors import HMNError

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cohort(short_clip, tmp_path_factory):
    """Two copies of the clip with the same stem in two folders, and a text file named .mp4."""
    root = tmp_path_factory.mktemp("cohort")
    videos = [root / "site_a" / "walk.mp4", root / "site_b" / "walk.mp4", root / "site_b" / "broken.mp4"]
    for video in videos[:2]:
        video.parent.mkdir(exist_ok=True)
        shutil.copy(short_clip, video)
    videos[2].write_text("not a video")
    return videos


@pytest.fixture(scope="module")
def first_call(cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("batch") / "out"
    return out, run_batch(cohort, out, QUICK, workers=2)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_names_are_unique_and_stable(cohort, tmp_path):
    names = [job.name for job in plan_jobs(cohort, tmp_path)]
    assert names[2] == "broken" and names[0] != names[1]
    assert all(name.startswith("walk-") and len(name) == len("walk-") + 8 for name in names[:2])
    assert names == [job.name for job in plan_jobs(cohort, tmp_path)]
    with pytest.raises(HMNError) as raised:
        plan_jobs([cohort[0], cohort[0]], tmp_path)
    assert str(raised.value) == f"{cohort[0]}: named twice in the batch"


def test_one_bad_video_does_not_stop_the_others(first_call, cohort):
    out, result = first_call
    assert [o.status for o in result.outcomes] == ["done", "done", "failed"]
    assert result.failures[0].error == f"{cohort[2]}: not a video file (no decoder could open it)"
    assert result.workers == worker_count(2, 3)
    assert not (out / "broken").exists()  # a failed run leaves no folder
    rows = _rows(out / COHORT_FILE)
    assert [row["status"] for row in rows] == ["done", "done", "failed"]
    assert rows[2]["error"] == result.failures[0].error and rows[2]["lumbar_rom_deg.sagittal.mean"] == ""
    report = json.loads((out / rows[0]["name"] / "report.json").read_text())
    for key, value in metric_columns(report["metrics"]):
        assert rows[0][key] == ("" if value is None else str(value))  # no stride in 1.3 s: a blank cell
    assert rows[0]["view.kind"] == report["view"]["kind"]
    assert rows[0]["spine_morphology.source"] == report["spine_morphology"]["source"]
    assert (
        float(rows[0]["spine_morphology.lumbar_lordosis_deg"])
        == report["spine_morphology"]["lumbar_lordosis_deg"]
    )
    assert "lumbar_rom_deg.sagittal.mean" in rows[0] and not any("per_cycle" in key for key in rows[0])


def test_a_second_call_skips_finished_videos_and_retries_failed_ones(first_call, cohort, short_clip):
    out, _ = first_call
    shutil.copy(short_clip, cohort[2])  # the user replaced the broken file
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("walk-*/report.json")}
    result = run_batch(cohort, out, QUICK, workers=2)
    assert [o.status for o in result.outcomes] == ["skipped", "skipped", "done"]
    assert {p: p.stat().st_mtime_ns for p in out.glob("walk-*/report.json")} == stamps
    assert [row["status"] for row in _rows(out / COHORT_FILE)] == ["done"] * 3
    assert json.loads((out / "batch.json").read_text())["broken"]["status"] == "done"


def crash_or_pass(job: Job, settings, threads: int) -> Outcome:
    """A worker job for the test below: the video named crash.mp4 kills its worker process."""
    if job.video.name == "crash.mp4":
        os._exit(3)
    return Outcome(job.name, str(job.video), "failed", f"{job.video}: checked")


def test_a_worker_that_dies_fails_only_its_video(tmp_path):
    videos = [tmp_path / name for name in ("one.mp4", "crash.mp4", "two.mp4")]
    result = run_batch(videos, tmp_path / "out", QUICK, workers=2, runner=crash_or_pass)
    errors = [o.error for o in result.outcomes]
    assert errors[0] == f"{videos[0]}: checked" and errors[2] == f"{videos[2]}: checked"
    assert errors[1] == f"{videos[1]}: its worker process died (a crash, or out of memory)"


def test_workers_are_bounded(monkeypatch):
    monkeypatch.setattr("hmn_blender_addon.batch.usable_cores", lambda: 8)
    monkeypatch.setattr("hmn_blender_addon.batch.available_memory_bytes", lambda: 5 << 30)
    assert worker_count(None, 20) == 2  # 5 GiB: two workers of 2 GiB
    assert worker_count(1, 20) == 1 and worker_count(None, 1) == 1
    with pytest.raises(HMNError) as raised:
        worker_count(0, 3)
    assert str(raised.value) == "--workers: needs at least 1 worker, got 0"


def test_group_statistics_match_hand_computed_welch():
    values = {
        "a": ("F", 1.0),
        "b": ("F", 2.0),
        "c": ("F", 3.0),
        "d": ("M", 4.0),
        "e": ("M", 6.0),
        "f": ("M", 8.0),
    }
    rows = [
        {"name": n, "video": n, "status": "done", "error": "", "x": str(v)} for n, (_, v) in values.items()
    ]
    rows.append({"name": "g", "video": "g", "status": "failed", "error": "g: bad", "x": ""})
    table = group_statistics(rows, {n: g for n, (g, _) in values.items()} | {"g": "M"})
    (entry,) = table
    assert (entry["F_n"], entry["F_mean"], entry["F_sd"]) == (3, 2.0, 1.0)
    assert (entry["M_n"], entry["M_mean"], entry["M_sd"]) == (3, 6.0, 2.0)
    # Welch: t = (2 - 6) / sqrt(1/3 + 4/3); df = (5/3)^2 / ((1/3)^2/2 + (4/3)^2/2)
    t = -4.0 / math.sqrt(5.0 / 3.0)
    df = (5.0 / 3.0) ** 2 / ((1.0 / 3.0) ** 2 / 2 + (4.0 / 3.0) ** 2 / 2)
    assert entry["t_F_vs_M"] == pytest.approx(t, rel=1e-9)
    assert entry["p_F_vs_M"] == pytest.approx(2 * stats.t.sf(abs(t), df), rel=1e-9)


def test_metadata_is_matched_by_path_or_file_name(tmp_path):
    jobs = plan_jobs(
        [tmp_path / "v" / "p1.mp4", tmp_path / "v" / "p2.mp4", tmp_path / "p3.mp4"], tmp_path / "o"
    )
    meta = tmp_path / "meta.csv"
    meta.write_text("video,sex\nv/p1.mp4,F\np2.mp4,M\nother.mp4,F\n")
    assert read_groups(meta, "sex", jobs) == {"p1": "F", "p2": "M"}
    with pytest.raises(HMNError) as raised:
        read_groups(meta, "age", jobs)
    assert str(raised.value) == f"{meta}: no 'age' column (columns: video, sex)"
    with pytest.raises(HMNError) as raised:
        read_groups(tmp_path / "none.csv", "sex", jobs)
    assert str(raised.value) == f"{tmp_path / 'none.csv'}: file not found"


def test_metadata_heights_are_checked(tmp_path):
    jobs = plan_jobs([tmp_path / "p1.mp4", tmp_path / "p2.mp4", tmp_path / "p3.mp4"], tmp_path / "o")
    meta = tmp_path / "meta.csv"
    meta.write_text("video,subject_height_m\np1.mp4,1.62\np2.mp4,\n")
    assert subject_heights(meta, jobs) == {"p1": 1.62}
    meta.write_text("video,subject_height_m\np1.mp4,162\n")
    with pytest.raises(HMNError) as raised:
        subject_heights(meta, jobs)
    assert str(raised.value) == f"{meta}: p1.mp4: subject_height_m must be 0.5 to 2.5 metres, got '162'"
    meta.write_text("video,sex\np1.mp4,F\n")
    assert subject_heights(meta, jobs) == {}


def test_ray_gives_the_same_cohort(first_call, cohort, tmp_path):
    import ray

    out, _ = first_call
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = run_batch(cohort, tmp_path / "ray", QUICK, ray_address="auto")
    finally:
        ray.shutdown()
    assert [o.status for o in result.outcomes] == ["done"] * 3
    assert (tmp_path / "ray" / COHORT_FILE).read_text() == (out / COHORT_FILE).read_text()
    np.testing.assert_array_equal(
        np.load(tmp_path / "ray" / "broken" / "reconstruction.npz")["joints_m"],
        np.load(out / "broken" / "reconstruction.npz")["joints_m"],
    )


IN_BLENDER = "import bpy, sys; from hmn_blender_addon.cli import main; sys.exit(main(sys.argv[1:]))"


def test_the_command_in_blender_runs_the_new_video_and_saves_groups(first_call, cohort, short_clip):
    """``hmn batch`` inside Blender's Python (the bpy module) on the finished cohort plus one new
    video: only that one runs (in a worker spawned from Blender's process), then the groups."""
    out, _ = first_call
    new = cohort[0].parents[1] / "site_c" / "walk_c.mp4"
    new.parent.mkdir()
    shutil.copy(short_clip, new)
    meta = cohort[0].parents[1] / "meta.csv"  # paths relative to its folder
    meta.write_text(
        "video,sex,subject_height_m\nsite_a/walk.mp4,F,\nsite_b/walk.mp4,M,\nsite_b/broken.mp4,M,\n"
        "walk_c.mp4,F,1.80\n"
    )
    command = [sys.executable, "-c", IN_BLENDER, "--quiet", "batch", *map(str, cohort), str(new)]
    command += [
        "--out",
        str(out),
        "--smoother",
        "butterworth",
        "--no-blend",
        "--meta",
        str(meta),
        "--group",
        "sex",
    ]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "batch: 4 videos: 1 done, 3 finished earlier, 0 failed" in done.stdout
    table = _rows(out / "groups.csv")
    cohort_rows = _rows(out / COHORT_FILE)
    assert [row["name"] for row in cohort_rows][-1] == "walk_c"
    sagittal = next(row for row in table if row["metric"] == "lumbar_rom_deg.sagittal.mean")
    assert sagittal["F_n"] == "2" and sagittal["M_n"] == "2"
    values = [float(row["lumbar_rom_deg.sagittal.mean"]) for row in cohort_rows]
    assert float(sagittal["F_mean"]) == pytest.approx((values[0] + values[3]) / 2)
    assert (out / "groups.png").stat().st_size > 10_000
    assert "lumbar_rom_deg.sagittal.mean" in done.stdout
    # the gait markers are columns and group rows; the new video's height gave its metric scale
    assert {"gait.walking_speed_m_s", "coordination_deg.transverse.mean"} <= {row["metric"] for row in table}
    fitted_height = json.loads((out / "walk_c" / "report.json").read_text())["body"]["height_m"]
    assert cohort_rows[-1]["gait.scale.source"] == "subject_height"
    assert float(cohort_rows[-1]["gait.scale.factor"]) == pytest.approx(1.80 / fitted_height)
    assert cohort_rows[0]["gait.scale.source"] == "fitted_shape"


def test_the_scale_checks_clips_are_distinct_and_as_long_as_asked(tmp_path):
    from hmn_blender_addon.cache import video_hash
    from hmn_blender_addon.scale import looped_clip, window_clips
    from hmn_blender_addon.video import probe_video

    clips = window_clips(tmp_path, 3, frames_each=31)
    assert len({video_hash(clip) for clip in clips}) == 3  # no cache entry shared between them
    assert [probe_video(clip).frames for clip in clips] == [31, 31, 31]
    info = probe_video(looped_clip(tmp_path / "long.mp4", 4.0, (320, 240)))
    assert (info.frames, info.width, info.height) == (round(4.0 * info.fps), 320, 240)
