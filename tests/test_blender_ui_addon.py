"""The add-on as a user meets it: the built extension zip installed in headless Blender (only bpy and
numpy visible besides the zip), Load Reconstruction on known motion, the panel, every export, save
and reopen, and Reconstruct from Video cancelled at several points.

One Blender session (tests/blender_scripts/blender_ui_session.py) does it all and reports; the
checks here compare what it saw with the known motion (tests/blender_ui_known_motion.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from blender_ui_known_motion import write_known_run

from hmn_blender_addon.body.model import body_forward, load_body_model
from hmn_blender_addon.export import MOT_COLUMNS
from hmn_blender_addon.normative import report_rows
from hmn_blender_addon.paths import DATA_DIR
from hmn_blender_addon.reconstruction import load_reconstruction
from hmn_blender_addon.rig import RigMotion, skinned_vertices
from hmn_blender_addon.skeleton import SMPL_JOINT_NAMES, VERTEBRA_NAMES
from hmn_blender_addon.subject import Y_UP_TO_Z_UP, angle_curves_deg, subject_rig_and_motion, to_lab

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_VIDEO = DATA_DIR / "sample_gait.mp4"


@pytest.fixture(scope="module")
def session(tmp_path_factory, shared_data, built_zip, bpy_only_sandbox) -> dict:
    """Install the built zip in a sandboxed Blender and run the session script once."""
    root = tmp_path_factory.mktemp("blender_ui")
    package, sandbox = built_zip, bpy_only_sandbox
    run_dir, out = root / "run", root / "out"
    run_dir.mkdir()
    out.mkdir()
    write_known_run(run_dir, shared_data, str(SAMPLE_VIDEO))
    (out / "vertebra_names.json").write_text(json.dumps(list(VERTEBRA_NAMES)))
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(root / "blender_user")}
    script = REPO_ROOT / "tests" / "blender_scripts" / "blender_ui_session.py"
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            str(script),
            str(package),
            str(sandbox),
            str(run_dir),
            str(SAMPLE_VIDEO),
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert result.returncode == 0 and "DONE" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]
    with np.load(out / "arrays.npz") as arrays:
        seen_arrays = {key: arrays[key] for key in arrays.files}
    return {
        "seen": json.loads((out / "seen.json").read_text()),
        "arrays": seen_arrays,
        "run_dir": run_dir,
        "out": out,
        "reconstruction": load_reconstruction(run_dir / "reconstruction.npz"),
        "report": json.loads((run_dir / "report.json").read_text()),
    }


def lab_z_up(reconstruction, points_m: np.ndarray) -> np.ndarray:
    return to_lab(reconstruction, points_m) @ Y_UP_TO_Z_UP.T


def test_load_builds_a_vertebra_chain_under_the_pelvis_keyframed_on_every_frame(session):
    seen, reconstruction = session["seen"], session["reconstruction"]
    assert seen["install"] == ["FINISHED"] and seen["load"] == ["FINISHED"]
    parents = seen["parents"]
    assert parents["S1"] == "pelvis"
    assert [parents[name] for name in VERTEBRA_NAMES[1:]] == list(VERTEBRA_NAMES[:-1])
    frames = reconstruction.num_frames
    assert seen["frames"] == [1, frames, 30, 1.0]
    bones = len(SMPL_JOINT_NAMES) + len(VERTEBRA_NAMES)
    # 4 quaternion channels per bone, the root's location, 6 angle curves: one key per frame each.
    assert len(seen["fcurves"]) == 4 * bones + 3 + 6
    assert set(seen["fcurves"].values()) == {frames}
    strikes = [("HS L", f + 1) for f in reconstruction.heel_strikes_left]
    strikes += [("HS R", f + 1) for f in reconstruction.heel_strikes_right]
    assert [tuple(m) for m in seen["markers"]] == sorted(strikes) and strikes
    assert seen["background"] == ["MOVIE_CLIP", str(SAMPLE_VIDEO)]


def test_a_corrupt_reconstruction_gets_a_clear_error_and_changes_nothing(session):
    seen, corrupt = session["seen"], session["out"] / "corrupt.npz"
    assert seen["corrupt"].startswith(f"Error: HumanMoveNet: {corrupt}: not a readable reconstruction file")
    assert seen["objects_after_corrupt"] == 0


def test_evaluated_bones_and_mesh_reproduce_the_reconstruction(session):
    reconstruction, arrays = session["reconstruction"], session["arrays"]
    checked = session["seen"]["checked"]
    assert checked == [0, reconstruction.num_frames // 2, reconstruction.num_frames - 1]
    points = np.concatenate([reconstruction.joints_m, reconstruction.vertebrae_m], axis=1)[checked]
    rig, motion = subject_rig_and_motion(reconstruction, load_body_model("open"))
    subset = RigMotion(motion.local_rotations[checked], motion.root_position_m[checked], motion.fps, {}, {})
    skinned = skinned_vertices(rig, subset) @ Y_UP_TO_Z_UP.T
    curves = angle_curves_deg(reconstruction)
    for row, frame in enumerate(checked):
        assert np.abs(arrays[f"heads_{frame}"] - lab_z_up(reconstruction, points[row])).max() < 1e-3
        assert np.abs(arrays[f"vertices_{frame}"] - skinned[row]).max() < 1e-3
        assert arrays[f"lumbar_flexion_{frame}"] == pytest.approx(
            curves["lumbar_flexion_deg"][frame], abs=1e-4
        )


def winding_numbers(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Generalised winding number of each point w.r.t. a triangle mesh (1 inside, 0 outside)."""
    a, b, c = (vertices[faces[:, k]][None] - points[:, None] for k in range(3))
    la, lb, lc = (np.linalg.norm(v, axis=-1) for v in (a, b, c))
    det = np.einsum("pfi,pfi->pf", a, np.cross(b, c))
    dots = la * lb * lc + np.einsum("pfi,pfi->pf", a, b) * lc
    dots += np.einsum("pfi,pfi->pf", b, c) * la + np.einsum("pfi,pfi->pf", c, a) * lb
    return np.arctan2(det, dots).sum(axis=1) / (2 * np.pi)


def test_every_vertebra_head_lies_inside_the_evaluated_mesh(session):
    arrays = session["arrays"]
    for frame in session["seen"]["checked"]:
        vertebra_heads = arrays[f"heads_{frame}"][len(SMPL_JOINT_NAMES) :]
        inside = winding_numbers(arrays[f"vertices_{frame}"], arrays["faces"], vertebra_heads)
        assert np.all(inside > 0.5), (frame, inside.round(2))


def test_the_camera_matches_the_estimated_one(session):
    reconstruction = session["reconstruction"]
    joints = reconstruction.joints_m[0]
    uvw = joints @ reconstruction.camera_K.T
    assert np.abs(session["arrays"]["projected_px"] - uvw[:, :2] / uvw[:, 2:]).max() < 0.1


def test_the_panel_shows_report_json_flagged_against_the_bands(session):
    seen, report = session["seen"], session["report"]
    rows = report_rows(report)
    assert [row[0] for row in seen["panel_rows"]] == [row.key for row in rows]
    for drawn, row in zip(seen["panel_rows"], rows, strict=True):
        assert drawn[1:] == [row.value, row.sd, row.flag, row.text]
        assert row.text in seen["panel_labels"] and row.label in seen["panel_labels"]
    assert seen["panel_controls"] == [
        *(f"prop {name}" for name in ("video_path", "output_dir", "body", "smoother", "subject_height_m")),
        "operator hmn.reconstruct",
        "operator hmn.load_reconstruction",
        "operator hmn.open_report_folder",
        "menu hmn.export format",
        "operator hmn.check_environment",
        "operator hmn.open_cache_folder",
    ]
    values = {row.key: row.value for row in rows}
    assert (
        values["metrics.lumbar_rom_deg.sagittal"] == report["metrics"]["lumbar_rom_deg"]["sagittal"]["mean"]
    )
    assert values["metrics.symmetry_index_pct.spinal"] == report["metrics"]["symmetry_index_pct"]["spinal"]
    assert values["quality.silhouette_iou"] == report["quality"]["silhouette_iou"]


def test_exports_write_every_format_with_the_same_motion(session):
    seen, reconstruction, out = session["seen"], session["reconstruction"], session["out"]
    assert all(result == ["FINISHED"] for result in seen["exports"].values())
    assert seen["export_files"] == [
        "s.abc",
        "s.bvh",
        "s.fbx",
        "s.mot",
        "s.npz",
        "s_report.csv",
        "s_report.json",
    ]
    exports = out / "exports"
    assert (exports / "s.fbx").stat().st_size > 0 and (exports / "s.abc").stat().st_size > 0
    bvh = (exports / "s.bvh").read_text()
    assert bvh.count("JOINT") + bvh.count("ROOT") == len(SMPL_JOINT_NAMES) + len(VERTEBRA_NAMES)
    assert f"Frames: {reconstruction.num_frames}" in bvh
    assert json.loads((exports / "s_report.json").read_text()) == session["report"]
    csv_lines = (exports / "s_report.csv").read_text().splitlines()
    spinal = session["report"]["metrics"]["symmetry_index_pct"]["spinal"]
    assert f"metrics.symmetry_index_pct.spinal,{spinal}" in csv_lines

    mot = (exports / "s.mot").read_text().splitlines()
    header_end = mot.index("endheader")
    assert mot[header_end + 1].split("\t") == ["time", *MOT_COLUMNS]
    table = np.array([line.split("\t") for line in mot[header_end + 2 :]], dtype=float)
    curves = angle_curves_deg(reconstruction)
    assert np.allclose(table[:, 0], reconstruction.frame_times_s)
    assert np.allclose(table[:, 4], -curves["lumbar_flexion_deg"], atol=1e-6)
    assert np.allclose(table[:, 1], curves["pelvic_tilt_deg"], atol=1e-6)

    with np.load(exports / "s.npz") as amass:
        poses, trans, betas = amass["poses"], amass["trans"], amass["betas"]
        assert float(amass["mocap_framerate"]) == 30.0 and str(amass["gender"]) == "neutral"
    frames = len(poses)
    _, joints = body_forward(
        load_body_model("open"),
        torch.tensor(betas, dtype=torch.float32).expand(frames, -1),
        torch.tensor(poses.reshape(frames, 24, 3), dtype=torch.float32),
        torch.tensor(trans, dtype=torch.float32),
    )
    assert np.abs(joints.numpy() - lab_z_up(reconstruction, reconstruction.joints_m)).max() < 1e-3


def test_a_saved_blend_reopens_with_the_animation_intact(session):
    seen, arrays, reconstruction = session["seen"], session["arrays"], session["reconstruction"]
    middle = seen["checked"][1]
    assert seen["reopened_frames"] == [1, reconstruction.num_frames]
    assert np.abs(arrays["reopened_heads"] - arrays[f"heads_{middle}"]).max() < 1e-5
    assert arrays["reopened_lumbar_flexion"] == pytest.approx(float(arrays[f"lumbar_flexion_{middle}"]))
    # run's scene.blend: written without leaving anything in the open file, reopens with the subject.
    assert seen["objects_after_write"] == ["HMN subject body", "HMN subject camera", "HMN subject rig"]
    assert len(seen["scene_blend_objects"]) == 3
    assert seen["scene_blend_export"] == ["FINISHED"]
    moved = session["out"] / "moved_again"
    assert (moved / "angles.mot").read_text().splitlines()[1:] == (
        (session["out"] / "exports" / "s.mot").read_text().splitlines()[1:]
    )


def test_cancelling_reconstruct_leaves_the_scene_and_the_output_folder_untouched(session):
    cancels = session["seen"]["cancel"]
    assert [c["stop_at"] for c in cancels] == [0.0, 0.05, 0.46]
    for cancel in cancels:
        assert cancel["result"] == ["CANCELLED"] and cancel["still_running"] == 0, cancel
        assert cancel["reports"] == [
            [["WARNING"], "HumanMoveNet: cancelled; the scene and the output folder are unchanged"]
        ]
        assert cancel["scene_same"] and cancel["folder_same"], cancel
    assert cancels[-1]["reached"] >= 0.46  # the last one stopped after the keypoints
    assert session["seen"]["ended_by_blender"] == {
        "still_running": 0,
        "ended": True,
        "error": "run: cancelled by the user",
        "scene_same": True,
        "folder_same": True,
    }


def test_reconstruct_starts_from_the_panel_settings_and_the_cancel_button_stops_it(session):
    execute = session["seen"]["execute"]
    assert execute["result"] == ["RUNNING_MODAL"] and execute["running"]
    assert execute["settings"] == ["butterworth", False, str(session["out"] / "via_execute")]
    assert execute["cancel"] == ["FINISHED"] and execute["ended"]
    assert execute["error"] == "run: cancelled by the user" and not execute["folder_exists"]


def test_a_successful_reconstruct_builds_the_subject_and_fills_the_output_folder(session):
    success = session["seen"]["success"]
    assert success["result"] == ["FINISHED"]
    fresh = session["out"] / "fresh"
    assert success["reports"] == [[["INFO"], f"HumanMoveNet: reconstructed {SAMPLE_VIDEO.name} into {fresh}"]]
    assert success["files"] == ["reconstruction.npz", "report.json", "scene.blend"]
    assert success["subject"].startswith("HMN subject rig") and success["report_dir"] == str(fresh)
    assert success["status"] == "done"


def test_keyframing_3000_frames_of_all_bones_is_fast(session):
    assert session["seen"]["keyframing_3000_s"] <= 2.0
