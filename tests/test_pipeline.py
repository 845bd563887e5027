"""``run`` end to end on the embedded sample clip: outputs, report contract, cancellation, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hmn_blender_addon.errors import Cancelled, HMNError
from hmn_blender_addon.fitting import FitSettings
from hmn_blender_addon.pipeline import SAMPLE_CLIP, RunSettings, run
from hmn_blender_addon.progress import Progress
from hmn_blender_addon.reconstruction import load_reconstruction

QUICK = RunSettings(smoother="butterworth", fit=FitSettings(iterations=120))


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return run(SAMPLE_CLIP, tmp_path_factory.mktemp("run") / "out", QUICK)


def test_run_writes_every_output(result):
    names = sorted(p.relative_to(result.out_dir).as_posix() for p in result.out_dir.rglob("*"))
    assert names == [
        "plots",
        "plots/angle_curves.png",
        "plots/coordination.png",
        "plots/gait.png",
        "plots/spine_profile.png",
        "plots/symmetry.png",
        "reconstruction.npz",
        "report.csv",
        "report.json",
        "scene.blend",
    ]
    reconstruction = load_reconstruction(result.reconstruction_path)
    assert reconstruction.num_frames == 90 and reconstruction.vertebra_names[0] == "S1"
    assert reconstruction.joints_m.shape == (90, 24, 3)


def test_report_follows_the_contract(result):
    report = json.loads(result.report_path.read_text())
    assert set(report) >= {"video", "body", "spine_morphology", "metrics", "quality", "timing_s", "camera"}
    assert report["video"]["frames"] == 90 and report["video"]["width"] == 640
    metrics = report["metrics"]
    assert metrics["cycles"]["source"] in ("heel_strikes", "whole_clip")
    for block, planes in (
        ("lumbar_rom_deg", ("sagittal", "frontal", "transverse")),
        ("pelvic_range_deg", ("tilt", "obliquity", "rotation")),
    ):
        for plane in planes:
            entry = metrics[block][plane]
            assert set(entry) == {"mean", "sd", "per_cycle"} and 0 < entry["mean"] < 45
    assert set(metrics["symmetry_index_pct"]) == {"lateral_bending", "axial_rotation", "spinal"}
    gait = metrics["gait"]
    assert gait["scale"] == {"source": "fitted_shape", "factor": 1.0}
    assert 0.5 < gait["walking_speed_m_s"] < 2.0 and 70 < gait["cadence_steps_per_min"] < 150
    for plane in ("transverse", "frontal"):
        assert 0 <= metrics["coordination_deg"][plane]["mean"] <= 180
    assert report["camera"]["focal_source"] == "default"
    # the sample is rendered from the side (azimuth 90 deg)
    assert report["view"]["kind"] == "side" and report["view"]["planes_shown"] == ["sagittal"]
    # the sample is a clean render: the fitted body reprojects within a few pixels
    assert report["quality"]["reprojection_px"] < 5 and report["quality"]["frames_with_person"] == 1.0


def test_cancelling_leaves_the_output_folder_untouched(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("earlier work")
    reports = []

    def sink(fraction, message):
        reports.append(fraction)
        if fraction > 0.5:  # during the fit
            progress.cancel()

    progress = Progress(sink)
    with pytest.raises(Cancelled):
        run(SAMPLE_CLIP, out, QUICK, progress)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_a_missing_video_is_one_clear_line_and_writes_nothing(tmp_path):
    missing = tmp_path / "nowhere.mp4"
    with pytest.raises(HMNError) as info:
        run(missing, tmp_path / "out", QUICK)
    assert str(info.value).startswith(str(missing))
    assert not (tmp_path / "out").exists()
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "hmn_blender_addon",
            "--quiet",
            "run",
            str(missing),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 2
    assert cli.stderr.strip().splitlines()[-1].startswith(f"hmn: error: {missing}: ")


def test_the_subject_height_sets_the_fitted_stature_and_so_the_gait_distances(result, tmp_path):
    """With the height given the fit holds the body at that stature: a taller subject farther away
    looks alike, so the distances grow by height / the prior-scaled stature, and times stay."""
    report = json.loads(result.report_path.read_text())
    fitted_height = report["body"]["height_m"]
    settings = RunSettings(**{**QUICK.__dict__, "subject_height_m": 1.8, "write_blend": False})
    scaled = run(SAMPLE_CLIP, tmp_path / "tall", settings).report
    assert scaled["body"]["height_m"] == pytest.approx(1.8, abs=0.005)
    gait, scaled_gait = report["metrics"]["gait"], scaled["metrics"]["gait"]
    assert scaled_gait["scale"]["source"] == "subject_height"
    assert scaled_gait["scale"]["factor"] == pytest.approx(1.0, abs=0.003)
    factor = 1.8 / fitted_height
    assert scaled_gait["walking_speed_m_s"] == pytest.approx(factor * gait["walking_speed_m_s"], rel=0.05)
    assert scaled_gait["stride_length_m"]["mean"] == pytest.approx(
        factor * gait["stride_length_m"]["mean"], rel=0.05
    )
    assert scaled_gait["cadence_steps_per_min"] == pytest.approx(gait["cadence_steps_per_min"], rel=0.02)
    assert scaled["settings"]["subject_height_m"] == 1.8
    with pytest.raises(HMNError) as info:
        run(SAMPLE_CLIP, tmp_path / "cm", RunSettings(subject_height_m=180.0))
    assert str(info.value) == "--subject-height-m: must be 0.5 to 2.5 metres, got 180.0"
    assert not (tmp_path / "cm").exists()
