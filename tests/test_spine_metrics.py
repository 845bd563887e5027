"""LBP metrics of a dynamic spine vs hand-computed values; whole-clip fallback; half-cycle error; reports."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hmn_blender_addon.errors import HMNError
from hmn_blender_addon.metrics.angles import rotation_from_cardan
from hmn_blender_addon.metrics.cycles import heel_strikes
from hmn_blender_addon.report import (
    SpineMetrics,
    body_masks,
    build_report,
    lbp_metrics,
    triangle_cover,
    world_from_camera,
    write_reports,
)
from hmn_blender_addon.skeleton import SMPL_JOINT_INDEX, VERTEBRA_NAMES
from hmn_blender_addon.spine.dynamic import DynamicSpine
from hmn_blender_addon.spine.morphology import SpineMorphology
from hmn_blender_addon.spine.profile import SpineProfile, place_spine

FPS = 30.0
STRIDE = 40  # frames per gait cycle (1.33 s)
LEFT_STRIKE = 10
# Camera looking at the walker from its left side, 4 m away, OpenCV axes: lab x (walker's left)
# = camera -z, lab y (up) = camera -y, lab z (walking) = camera -x (a proper rotation).
CAMERA_FROM_LAB = np.array([[0.0, 0.0, -1.0], [0.0, -1.0, 0.0], [-1.0, 0.0, 0.0]])
LAB_ORIGIN_IN_CAMERA = np.array([1.0, 0.9, 4.0])  # the first pelvis's ground point


def _walk(frames: int, asymmetry: float) -> tuple[np.ndarray, DynamicSpine]:
    """Joints (T, 24, 3) and a dynamic spine (camera frame) of a walk with known trunk angles.

    Pelvis tilt 3 sin(2 phi) deg (ROM 6), lumbar flexion 2 cos(2 phi) (ROM 4), lateral bending
    5 sin(phi) stretched by 1 + a to the left and 1 - a to the right (ROM 10), axial rotation
    4 cos(phi) (ROM 8); phi = 0 at each left heel strike.
    """
    t = np.arange(frames)
    phi = 2 * np.pi * (t - LEFT_STRIKE) / STRIDE
    joints = np.zeros((frames, 24, 3))
    pelvis = np.stack([np.zeros(frames), np.full(frames, 0.95), 1.2 * t / FPS], axis=1)
    joints[:] = pelvis[:, None]
    joints[:, SMPL_JOINT_INDEX["neck"], 1] += 0.55
    for side, shift in (("left", 0.0), ("right", np.pi)):
        ankle = pelvis + np.stack([np.zeros(frames), -0.85 + 0 * t, 0.3 * np.cos(phi - shift)], axis=1)
        joints[:, SMPL_JOINT_INDEX[f"{side}_ankle"]] = ankle
    bend = 5 * np.sin(phi)
    bend = bend * np.where(bend > 0, 1 + asymmetry, 1 - asymmetry)
    lumbar = np.radians(np.stack([2 * np.cos(2 * phi), bend, 4 * np.cos(phi)], axis=1))
    pelvis_rotation = rotation_from_cardan(np.radians(np.stack([3 * np.sin(2 * phi), 0 * t, 0 * t], axis=1)))
    count = len(VERTEBRA_NAMES)
    lab_rotations = np.repeat(pelvis_rotation[:, None], count, axis=1)
    l1 = VERTEBRA_NAMES.index("L1")
    lab_rotations[:, l1:] = (pelvis_rotation @ rotation_from_cardan(lumbar))[:, None]
    to_camera = lambda p: p @ CAMERA_FROM_LAB.T + LAB_ORIGIN_IN_CAMERA  # noqa: E731
    ground = joints[0, 0] * [1, 0, 1]
    spine = DynamicSpine(
        names=VERTEBRA_NAMES,
        centres_m=to_camera(pelvis[:, None] + np.linspace(0, 0.5, count)[:, None] * [0, 1, 0] - ground),
        rotations=CAMERA_FROM_LAB @ lab_rotations,
        rest_heads_m=np.zeros((count, 3)),
        parents=np.arange(count),
    )
    return to_camera(joints - ground), spine


def _lab() -> np.ndarray:
    normal = CAMERA_FROM_LAB @ [0.0, 1.0, 0.0]
    pelvis = np.array([[0, 0.95, 0], [0, 0.95, 1.0]]) @ CAMERA_FROM_LAB.T + LAB_ORIGIN_IN_CAMERA
    return world_from_camera(normal, float(normal @ LAB_ORIGIN_IN_CAMERA), pelvis)


def test_world_from_camera_recovers_the_lab():
    expected = np.eye(4)
    expected[:3, :3] = CAMERA_FROM_LAB.T
    expected[:3, 3] = -CAMERA_FROM_LAB.T @ LAB_ORIGIN_IN_CAMERA
    np.testing.assert_allclose(_lab(), expected, atol=1e-12)


def test_hand_computed_roms_and_symmetry():
    joints, spine = _walk(3 * STRIDE, asymmetry=0.2)
    result = lbp_metrics(spine, joints, _lab(), FPS)
    assert result.heel_strikes == {"left": [10, 50, 90], "right": [30, 70, 110]}
    metrics = result.metrics
    assert metrics["cycles"] == {"count": 2, "source": "heel_strikes"}
    assert result.cycles == [(10, 50), (50, 90)]
    lumbar, pelvic = metrics["lumbar_rom_deg"], metrics["pelvic_range_deg"]
    np.testing.assert_allclose(lumbar["sagittal"]["per_cycle"], [4.0, 4.0], atol=1e-9)
    np.testing.assert_allclose(lumbar["frontal"]["mean"], 10.0, atol=1e-9)  # 5 (1.2) + 5 (0.8)
    np.testing.assert_allclose(lumbar["transverse"]["mean"], 8.0, atol=1e-9)
    assert lumbar["transverse"]["sd"] == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(pelvic["tilt"]["mean"], 6.0, atol=1e-9)
    np.testing.assert_allclose(pelvic["obliquity"]["mean"], 0.0, atol=1e-9)
    # Skewed sine a (1 +- s): cycle mean 2as/pi (discrete: 2as/N cot(pi/N)), L = a(1+s) - mean,
    # R = a(1-s) + mean, SI = 100 |L - R| / (0.5 (L + R)) = 200 s (1 - 2/pi) = 14.54% for s = 0.2
    mean = 2 * 5 * 0.2 / STRIDE / np.tan(np.pi / STRIDE)
    left, right = 5 * 1.2 - mean, 5 * 0.8 + mean
    expected = 100 * abs(left - right) / (0.5 * (left + right))
    symmetry = metrics["symmetry_index_pct"]
    assert symmetry["lateral_bending"] == pytest.approx(expected, rel=1e-9)
    assert symmetry["lateral_bending"] == pytest.approx(14.54, abs=0.1)  # the continuous limit
    assert symmetry["axial_rotation"] == pytest.approx(0.0, abs=1e-9)
    assert symmetry["spinal"] == pytest.approx(expected / 2, rel=1e-9)
    np.testing.assert_allclose(result.lumbar_deg[LEFT_STRIKE], [2.0, 0.0, 4.0], atol=1e-9)


def test_a_bump_of_the_other_foot_beside_a_strike_is_not_a_strike():
    joints, spine = _walk(3 * STRIDE, asymmetry=0.0)
    right = SMPL_JOINT_INDEX["right_ankle"]
    lab = _lab()
    bump = 0.2 * np.exp(-0.5 * ((np.arange(len(joints)) - 12) / 1.5) ** 2)  # 2 frames after a left strike
    joints[:, right] += bump[:, None] * (CAMERA_FROM_LAB @ [0.0, 0.0, 1.0])
    joints_lab = joints @ lab[:3, :3].T + lab[:3, 3]
    pelvis = joints_lab[:, SMPL_JOINT_INDEX["pelvis"]]
    assert 12 in heel_strikes(joints_lab[:, right], pelvis, np.array([0.0, 0.0, 1.0]), FPS)
    result = lbp_metrics(spine, joints, lab, FPS)
    assert result.heel_strikes == {"left": [10, 50, 90], "right": [30, 70, 110]}


def test_a_clip_without_a_complete_cycle_is_measured_whole():
    joints, spine = _walk(40, asymmetry=0.0)  # strikes: left 10, right 30
    result = lbp_metrics(spine, joints, _lab(), FPS)
    assert result.heel_strikes == {"left": [10], "right": [30]}
    assert result.metrics["cycles"] == {"count": 0, "source": "whole_clip"}
    assert result.cycles == [(0, 40)]
    np.testing.assert_allclose(result.metrics["pelvic_range_deg"]["tilt"]["per_cycle"], [6.0], atol=0.05)


def test_less_than_half_a_cycle_is_an_error():
    joints, spine = _walk(22, asymmetry=0.0)  # one left strike, no right one
    with pytest.raises(HMNError) as error:
        lbp_metrics(spine, joints, _lab(), FPS, source="walk.mp4")
    assert str(error.value) == (
        "walk.mp4: less than half a gait cycle in 22 frames (heel strikes: left [10], right []); "
        "film at least one full stride"
    )


def test_body_masks_fill_the_projected_triangles():
    K = np.array([[100.0, 0, 20], [0, 100.0, 10], [0, 0, 1]])
    square = np.array([[-0.1, -0.05, 1.0], [0.1, -0.05, 1.0], [0.1, 0.05, 1.0], [-0.1, 0.05, 1.0]])
    masks = body_masks(square[None], np.array([[0, 1, 2], [0, 2, 3]]), K, (40, 20))
    assert masks.shape == (1, 20, 40)
    # the corners on pixel centres: the top-left rule keeps rows 5..14 and columns 10..29, 20 x 10 pixels
    assert masks[0, 5:15, 10:30].all() and masks[0].sum() == 20 * 10


def centres_in_triangles(triangles: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W): pixel centres inside or on any (F, 3, 2) triangle, each pixel tested against each
    (the tests' triangles leave no centre on an edge, where the top-left rule would decide)."""
    ys, xs = np.mgrid[:height, :width].astype(float)
    inside = np.zeros((height, width), dtype=bool)
    for a, b, c in triangles:
        sides = [
            (q[0] - p[0]) * (ys - p[1]) - (q[1] - p[1]) * (xs - p[0]) for p, q in ((a, b), (b, c), (c, a))
        ]
        inside |= np.all([side >= -1e-9 for side in sides], axis=0) | np.all(
            [side <= 1e-9 for side in sides], axis=0
        )
    return inside


def test_body_masks_are_the_union_of_overlapping_closed_meshes():
    corners = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], dtype=float)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    cube_faces = np.array([tri for a, b, c, d in quads for tri in ((a, b, c), (a, c, d))])
    turn = Rotation.from_euler("xy", [25, 35], degrees=True).as_matrix()
    near = (corners - 0.5) * 0.2 @ turn.T + [0.0, 0.0, 1.0]
    far = (corners - 0.5) * 0.3 @ turn.T + [0.08, 0.05, 1.6]  # behind the near cube, overlapping it
    vertices = np.concatenate([near, far])
    faces = np.concatenate([cube_faces, cube_faces + 8])
    K = np.array([[200.0, 0, 40], [0, 200.0, 40], [0, 0, 1]])
    masks = body_masks(vertices[None], faces, K, (80, 80))
    uvw = vertices @ K.T
    union = centres_in_triangles((uvw[:, :2] / uvw[:, 2:])[faces], 80, 80)  # every triangle tested
    assert union.sum() > 1000
    np.testing.assert_array_equal(masks[0], union)


def test_triangle_cover_leaves_no_crack_between_triangles_and_keeps_to_the_image():
    rng = np.random.default_rng(3)
    # a fan of thin triangles round a centre: many shared edges at arbitrary slopes
    angles = np.sort(rng.uniform(0, 2 * np.pi, 40))
    rim = np.stack([30 + 25 * np.cos(angles), 20 + 25 * np.sin(angles)], -1)  # reaches beyond the image
    fan = np.array([[[30.3, 20.7], rim[i], rim[(i + 1) % len(rim)]] for i in range(len(rim))])
    cover = triangle_cover(fan, 50, 40)
    np.testing.assert_array_equal(cover, centres_in_triangles(fan, 50, 40))
    polygon = centres_in_triangles(
        np.array([[rim[0], rim[i], rim[i + 1]] for i in range(1, len(rim) - 1)]), 50, 40
    )
    np.testing.assert_array_equal(cover, polygon)  # the fan covers its rim polygon, no pixel missed
    assert not triangle_cover(fan + np.array([200.0, 0.0]), 50, 40).any()  # wholly outside: nothing drawn


def test_reports_are_written_with_the_section_10_keys(tmp_path):
    joints, spine = _walk(3 * STRIDE, asymmetry=0.2)
    result = lbp_metrics(spine, joints, _lab(), FPS)
    rest = place_spine(SpineProfile(45.0, 40.0, 0.0), np.array([0, 0.1, 0]), np.array([0, 0.55, 0]))
    morphology = SpineMorphology(rest.profile, rest, "body_surface", 0, rest.origins_m[:, 1:])
    quality = {"silhouette_iou": 0.9, "mask_psnr_db": 20.0, "reprojection_px": 3.0, "frames_with_person": 1.0}
    report = build_report(
        video={"path": "walk.mp4", "frames": len(joints), "fps": FPS, "width": 640, "height": 480},
        body={"model": "open", "betas": [0.0], "height_m": 1.7},
        morphology=morphology,
        spine_metrics=result,
        quality=quality,
        timing_s={"spine": 0.1},
    )
    paths = write_reports(tmp_path, report, result, morphology, FPS)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in paths) == [
        "plots/angle_curves.png",
        "plots/coordination.png",
        "plots/gait.png",
        "plots/spine_profile.png",
        "plots/symmetry.png",
        "report.csv",
        "report.json",
    ]
    data = json.loads((tmp_path / "report.json").read_text())
    assert set(data) == {"video", "body", "spine_morphology", "metrics", "quality", "timing_s"}
    assert data["spine_morphology"]["lumbar_lordosis_deg"] == pytest.approx(45.0)
    assert data["spine_morphology"]["source"] == "body_surface"
    assert set(data["metrics"]) == {
        "cycles",
        "lumbar_rom_deg",
        "pelvic_range_deg",
        "symmetry_index_pct",
        "gait",
        "coordination_deg",
    }
    # the walk: pelvis at 1.2 m/s, a strike every 20 frames, ankles 0.3 m ahead of / behind the pelvis
    gait = data["metrics"]["gait"]
    assert gait["walking_speed_m_s"] == pytest.approx(1.2)
    assert gait["stride_length_m"]["mean"] == pytest.approx(1.2 * STRIDE / FPS)
    assert gait["cadence_steps_per_min"] == pytest.approx(60 / (STRIDE / 2 / FPS))
    assert gait["step_length_m"] == pytest.approx({"left": 0.6, "right": 0.6})
    assert gait["symmetry_index_pct"] == pytest.approx({"step_time": 0.0, "step_length": 0.0})
    assert set(data["metrics"]["coordination_deg"]) == {"transverse", "frontal"}
    rows = dict(csv.reader((tmp_path / "report.csv").open()))
    assert float(rows["metrics.lumbar_rom_deg.frontal.mean"]) == pytest.approx(10.0)
    assert float(rows["metrics.lumbar_rom_deg.frontal.per_cycle.2"]) == pytest.approx(10.0)
    assert rows["metrics.cycles.source"] == "heel_strikes"
    assert float(rows["metrics.gait.walking_speed_m_s"]) == pytest.approx(1.2)
    assert rows["metrics.gait.scale.source"] == "fitted_shape"
    assert (tmp_path / "plots" / "angle_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.rglob("*.part*"))
    assert isinstance(result, SpineMetrics)
