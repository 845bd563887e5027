"""The benchmark: its clip design, an end-to-end run on one tiny clip, and the scorer against known errors."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from hmn_blender_addon import bench as bench_module
from hmn_blender_addon.bench import LOWPASS_FLOOR_ROW, clip_design, score_reconstruction
from hmn_blender_addon.cli import main
from hmn_blender_addon.metrics.angles import anatomical_rotations
from hmn_blender_addon.progress import Progress
from hmn_blender_addon.temporal.smooth import SMOOTHERS

# the ranking clips (phase, screening) are the full bench's, not this test's
NO_PAIRS = ("--coordination-walks", "0", "--screening-walks", "0")


def test_design_covers_views_bodies_and_variants():
    design = clip_design(6, 90, 640, 480)
    pairs = {(s.view, s.lumbar_rom_scale, s.asymmetry) for _, s in design}
    assert {view for view, _, _ in pairs} == {"side", "oblique", "front"}
    assert {(scale, asym) for _, scale, asym in pairs} == {(1.0, 0.0), (0.5, 0.0), (1.0, 0.3)}
    assert len(pairs) == 6
    assert len({s.body_seed for _, s in design}) == 6
    assert sum(s.clothes for _, s in design) == 3


def _tiny_bench(out) -> int:
    """``hmn bench`` on one 36-frame 320x240 side-view clip into ``out`` (its heel strikes at
    frames 8 and 26: at 32 frames the second one's drop before the clip's end sat at the detector's
    prominence threshold, 0.074 m against 0.0745)."""
    return main(
        [
            "--quiet",
            "bench",
            "--out",
            str(out),
            "--clips",
            "1",
            "--frames",
            "36",
            "--size",
            "320x240",
            *NO_PAIRS,
        ]
    )


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    assert _tiny_bench(out) == 0
    return out


def test_bench_writes_its_table_and_scores_the_pipeline(bench_run, capsys):
    bench = json.loads((bench_run / "bench.json").read_text())
    assert set(bench) >= {"clips", "summary", "speed", "stages"}
    (clip,) = bench["clips"]
    assert clip["name"] == "00_side_normal" and clip["view"] == "side"
    # MediaPipe on the rendered body: the walker is found and its landmarks sit near the true joints
    assert clip["errors"]["frames_with_person"] > 0.9
    assert clip["errors"]["keypoints_px"] < 15.0
    assert clip["errors"]["keypoints_mask_iou"] > 0.6
    assert bench["speed"]["keypoints_fps"] > 0
    assert bench["stages"]["keypoints"] == "available"
    # the pipeline (pipeline.reconstruct) is scored against the truth
    assert bench["stages"]["fit"] == "available"
    assert clip["failures"] == {}
    assert (
        0 < bench["summary"]["mpjpe_mm"] < 150
        and bench["summary"]["pa_mpjpe_mm"] < bench["summary"]["mpjpe_mm"]
    )
    assert 0 < bench["speed"]["pipeline_to_keypoints_fps_ratio"] < 1
    # gait and coordination against the truth; each smoother on the clip's cached fit and on mocap
    assert {"mpjpe_mm_height", "walking_speed_err_pct_height", "relative_phase_err_deg_transverse"} <= set(
        clip["errors"]
    )
    assert 0 <= clip["errors"]["pelvis_orientation_err_deg"] < 45
    rendered = bench["smoothers"]["rendered"]
    assert set(rendered) == {*SMOOTHERS, LOWPASS_FLOOR_ROW}
    # the reference row is the truth itself low-passed: it keeps the joints where they are
    assert rendered[LOWPASS_FLOOR_ROW]["mpjpe_mm"] < 5 < rendered["none"]["mpjpe_mm"]
    assert {row["smoother"] for row in bench["smoothers"]["mocap"]} == set(SMOOTHERS)
    table = (bench_run / "bench.md").read_text().splitlines()
    assert table[0].startswith("| clip | MPJPE mm | MPJPE mm (height) | PA-MPJPE mm | pelvis orient. err °")
    assert table[2].startswith("| 00_side_normal | ") and table[-1].startswith("| **mean** | ")
    # a second run reuses the rendered clip
    video = bench_run / "clips" / "00_side_normal" / "clip.mp4"
    before = video.stat().st_mtime_ns
    assert _tiny_bench(bench_run) == 0
    assert video.stat().st_mtime_ns == before
    assert "keypoints_px" in capsys.readouterr().out


def _reconstruction_from_truth(truth: dict) -> SimpleNamespace:
    """A stand-in Reconstruction holding the truth itself (camera frame)."""
    world_to_camera = np.asarray(truth["camera"]["world_to_camera"])
    rotation = world_to_camera[:3, :3]
    frames_camera = np.asarray(truth["vertebra_frames_camera"])
    anatomical_world = anatomical_rotations(
        rotation.T @ frames_camera, np.asarray(truth["vertebra_static_frames"]), np.eye(3)
    )
    return SimpleNamespace(
        joints_m=np.asarray(truth["joints_camera_m"]),
        vertebrae_m=np.asarray(truth["vertebrae_camera_m"]),
        vertebra_rotations=rotation @ anatomical_world,
        world_from_camera=np.linalg.inv(world_to_camera),
        heel_strikes_left=np.asarray(truth["heel_strikes"]["left"]),
        heel_strikes_right=np.asarray(truth["heel_strikes"]["right"]),
        spine_morphology_json="{}",
    )


def test_scorer_reads_zero_on_the_truth_and_the_known_error_of_a_shift(bench_run):
    truth = json.loads((bench_run / "clips" / "00_side_normal" / "truth.json").read_text())
    exact = score_reconstruction(_reconstruction_from_truth(truth), truth)
    for key, value in exact.items():
        assert value == pytest.approx(0.0, abs=0.05), key
    shifted = _reconstruction_from_truth(truth)
    shifted.joints_m = shifted.joints_m.copy()
    shifted.joints_m[:, 1:] += np.array([0.0, 0.0, 0.023])  # every joint but the pelvis 23 mm deeper
    errors = score_reconstruction(shifted, truth)
    assert errors["mpjpe_mm"] == pytest.approx(23.0 * 23 / 24, rel=1e-6)
    assert errors["accel_err_mm_s2"] == pytest.approx(0.0, abs=1e-6)


def test_stage_registry_reports_what_is_missing(monkeypatch):
    monkeypatch.setattr(
        bench_module,
        "RECONSTRUCTION_STAGES",
        (
            ("a", ".no_such_module", "f"),
            ("b", ".metrics.accuracy", "no_such_function"),
            ("c", ".metrics.accuracy", "mpjpe_mm"),
        ),
    )
    available, status = bench_module.reconstruction_stages()
    assert list(available) == ["c"]
    assert status["a"] == "not yet available (no module hmn_blender_addon.no_such_module)"
    assert status["b"] == "not yet available (no hmn_blender_addon.metrics.accuracy.no_such_function)"
    assert status["c"] == "available"


def test_a_reconstruction_stage_plugs_in(bench_run, monkeypatch):
    folder = bench_run / "clips" / "00_side_normal"
    truth = json.loads((folder / "truth.json").read_text())

    heights = []

    def stage(video, progress, subject_height_m=None):  # stands in for the pipeline in this test only
        assert video == folder / "clip.mp4"
        heights.append(subject_height_m)
        reconstruction = _reconstruction_from_truth(truth)
        reconstruction.timing_s = {"fit": 1.5}
        return reconstruction

    monkeypatch.setattr(bench_module, "reconstruction_stages", lambda: ({"fit": stage}, {"fit": "available"}))
    bench = bench_module.run_bench([folder], Progress())
    errors = bench["clips"][0]["errors"]
    assert errors["mpjpe_mm"] == pytest.approx(0.0, abs=1e-6)
    # timed as a user without the height runs it, then scored again given the true height
    assert heights == [None, truth["body"]["height_m"]]
    assert errors["mpjpe_mm_height"] == pytest.approx(0.0, abs=1e-6)
    assert "keypoints_px" in errors
    assert bench["speed"]["pipeline_fps"] > 0
    assert bench["speed"]["seconds_per_stage"]["fit.fit"] == 1.5
    assert "mpjpe_mm" in bench_module.format_table(bench)


def test_scale_checks_are_printed():
    scale = {
        "throughput": {
            "1": {"workers": 1, "seconds": 600.0, "videos_per_hour": 120.0, "failed": 0},
            "2": {"workers": 2, "seconds": 400.0, "videos_per_hour": 180.0, "failed": 0},
        },
        "speedup_2_over_1": 1.5,
        "ray": {"seconds": 410.0, "failed": 0, "cohort_identical": True},
        "peak_rss_mb": {"60s": 1000.0, "600s": 1050.0},
        "long_over_short_memory": 1.05,
    }
    assert bench_module.format_scale(scale).splitlines() == [
        "batch throughput, 1 worker(s): 120 videos/h (600 s, 0 failed)",
        "batch throughput, 2 worker(s): 180 videos/h (400 s, 0 failed)",
        "2 workers over 1: 1.50x",
        "the same batch on a local Ray instance: 410 s, 0 failed, cohort.csv identical to the 2 workers'",
        "peak memory of one run at 720p: 60s clip 1000 MB, 600s clip 1050 MB; long / short 1.050",
    ]


def test_phase_ranking_counts_pairs_of_one_walk_far_enough_apart():
    clips = [
        {"walk": [1, 1, "side"], "true_phase_deg": 30.0, "phase_deg": 40.0},
        {"walk": [1, 1, "side"], "true_phase_deg": 50.0, "phase_deg": 35.0},  # misranked against 30
        {"walk": [1, 1, "side"], "true_phase_deg": 120.0, "phase_deg": 100.0},
        {"walk": [2, 2, "side"], "true_phase_deg": 45.0, "phase_deg": 10.0},  # another walk: no pair
        {"walk": [1, 1, "side"], "true_phase_deg": 60.0, "phase_deg": 0.0},  # 10 deg from 50: no pair
    ]
    ranking = bench_module.coordination_ranking(clips)
    # pairs: 30-50 (wrong), 30-120, 50-120, 30-60 (wrong), 60-120
    assert ranking == {"pairs": 5.0, "ranked_correctly": pytest.approx(3 / 5)}
    assert bench_module.coordination_ranking(clips[3:4]) is None


def test_screening_design_makes_each_walk_at_three_rom_scales_and_an_asymmetric_twin():
    design = bench_module.screening_design(2, 90, 640, 480)
    assert [name for name, _ in design[:7]] == [
        "s0_side_scale050",
        "s0_side_scale100",
        "s0_side_scale150",
        "s0_oblique_scale050",
        "s0_oblique_scale100",
        "s0_oblique_scale150",
        "s0_oblique_asym030",
    ]
    for walk in (design[:7], design[7:]):
        # one walk: the same seeds, only the view and the trunk's ROM scale or asymmetry differ
        assert len({(s.seed, s.body_seed) for _, s in walk}) == 1
        assert [(s.view, s.lumbar_rom_scale, s.asymmetry) for _, s in walk] == [
            ("side", 0.5, 0.0),
            ("side", 1.0, 0.0),
            ("side", 1.5, 0.0),
            ("oblique", 0.5, 0.0),
            ("oblique", 1.0, 0.0),
            ("oblique", 1.5, 0.0),
            ("oblique", 1.0, 0.3),
        ]
    assert design[0][1].body_seed != design[7][1].body_seed


def test_screening_ranking_orders_rom_scales_per_plane_in_its_views_and_asymmetric_twins():
    def clip(walk, view, scale, asymmetry, sagittal, frontal, transverse, symmetry_index, lateral=0.0):
        rom = {"sagittal": sagittal, "frontal": frontal, "transverse": transverse}
        # the spinal index is the mean of its two parts: the lateral bending one given, the axial
        # rotation one what makes that mean
        parts = {"lateral_bending": lateral, "axial_rotation": 2 * symmetry_index - lateral}
        return {
            "walk": [walk, walk, view],
            "rom_scale": scale,
            "asymmetry": asymmetry,
            "lumbar_rom_deg": rom,
            "symmetry_index_pct": {"spinal": symmetry_index, **parts},
        }

    clips = [
        # the side view ranks the sagittal plane only: (0.5, 1) right, (0.5, 1.5) right, (1, 1.5) wrong
        clip(1, "side", 0.5, 0.0, 2.0, 9.0, 9.0, 0.0),
        clip(1, "side", 1.0, 0.0, 5.0, 1.0, 1.0, 0.0),
        clip(1, "side", 1.5, 0.0, 4.0, 9.0, 1.0, 0.0),
        # the oblique view ranks the frontal and transverse planes
        clip(1, "oblique", 0.5, 0.0, 9.0, 5.0, 4.0, 10.0),
        clip(1, "oblique", 1.0, 0.0, 1.0, 4.0, 8.0, 12.0),  # frontal lower than at 0.5: misranked
        clip(1, "oblique", 1.5, 0.0, 5.0, 15.0, 7.0, 11.0),  # transverse lower than at 1.0: misranked
        # its twin (scale 1) has 12: ranked, by its axial part (61 against 24) too, not its lateral one
        clip(1, "oblique", 1.0, 0.3, 4.5, 10.0, 8.0, 30.0, lateral=-1.0),
        clip(2, "oblique", 1.0, 0.0, 3.0, 9.0, 6.0, 25.0),
        # lower than its twin's 25: misranked, by its lateral part (-5 against 0) and axial one (45, 50) too
        clip(2, "oblique", 1.0, 0.3, 3.0, 9.0, 6.0, 20.0, lateral=-5.0),
        clip(3, "oblique", 0.5, 0.0, 9.0, 9.0, 9.0, 9.0),  # alone in its walk: no pair
    ]
    ranking = bench_module.screening_ranking(clips)
    assert ranking["rom_scale"] == {
        "sagittal": {"pairs": 3.0, "ranked_correctly": pytest.approx(2 / 3)},
        "frontal": {"pairs": 3.0, "ranked_correctly": pytest.approx(2 / 3)},
        "transverse": {"pairs": 3.0, "ranked_correctly": pytest.approx(2 / 3)},
    }
    assert ranking["asymmetry"] == {
        "pairs": 2.0,
        "ranked_correctly": 0.5,
        "ranked_correctly_lateral_bending": 0.0,
        "ranked_correctly_axial_rotation": 0.5,
    }
    assert bench_module.screening_ranking(clips[9:]) is None
    assert bench_module._screening_lines(ranking) == [
        "lumbar ROM ranking: pairs of clips of one walk made at different --lumbar-rom-scale whose "
        "estimated ROMs order as made, per plane in the views that show it: sagittal 67% of 3, "
        "frontal 67% of 3, transverse 67% of 3",
        "asymmetry ranking: 50% of 2 --asymmetry clips get a higher symmetry index than their symmetric twin "
        "(by its lateral bending part alone 0%, by its axial rotation part alone 50%)",
    ]
