"""The synthetic walk's truth without rendering: physiological ranges, ROM scale, asymmetry, spine, cycles."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hmn_blender_addon.errors import HMNError
from hmn_blender_addon.metrics.angles import lumbar_angles
from hmn_blender_addon.metrics.cycles import spine_metrics, walk_metrics
from hmn_blender_addon.skeleton import VERTEBRA_NAMES
from hmn_blender_addon.spine.morphology import rest_back_profile
from hmn_blender_addon.spine.profile import back_surface_z
from hmn_blender_addon.synth.command import SynthSettings, check_settings
from hmn_blender_addon.synth.gait import GaitSettings, make_motion, rest_anchors, rest_body
from hmn_blender_addon.synth.spine import KYPHOSIS_RANGE_DEG, LORDOSIS_RANGE_DEG, sample_profile
from hmn_blender_addon.synth.trunk import healthy_relative_phase_deg


@pytest.fixture(scope="session")
def mocap_dir(shared_data):
    return shared_data / "mocap" / "cmu_walk"


@pytest.fixture(scope="session")
def walks(mocap_dir):
    """Default-length walks of one subject at lumbar ROM scale 1 and 0.5, and asymmetric."""
    settings = {"normal": (1.0, 0.0), "stiff": (0.5, 0.0), "antalgic": (1.0, 0.4)}
    out = {}
    for name, (scale, asymmetry) in settings.items():
        motion = make_motion(GaitSettings(3, 7, 90, 30.0, scale, asymmetry), mocap_dir)
        out[name] = (
            motion,
            spine_metrics(motion.anatomical_rotations, motion.joints_m[:, 0], motion.heel_strikes),
        )
    return out


def _rom(metrics: dict, plane: str) -> float:
    return metrics["lumbar_rom_deg"][plane]["mean"]


def test_default_length_has_two_cycles_and_physiological_ranges(walks):
    motion, metrics = walks["normal"]
    assert metrics["cycles"] == {"count": 2, "source": "heel_strikes"}
    left, right = motion.heel_strikes["left"], motion.heel_strikes["right"]
    strikes = sorted([(f, "L") for f in left] + [(f, "R") for f in right])
    assert all(a[1] != b[1] for a, b in itertools.pairwise(strikes)), "feet must alternate"
    # ranges at scale 1 (deg), with a small allowance for the composition of levels
    for plane, (low, high) in {"sagittal": (3, 6), "frontal": (8, 12), "transverse": (6, 10)}.items():
        assert low - 0.3 <= _rom(metrics, plane) <= high + 0.3, plane
    for plane, (low, high) in {"tilt": (3, 5), "obliquity": (6, 10), "rotation": (8, 12)}.items():
        assert low - 0.3 <= metrics["pelvic_range_deg"][plane]["mean"] <= high + 0.3, plane


def test_over_whole_strides_the_walker_travels_the_way_its_pelvis_faces(walks):
    motion, _ = walks["normal"]
    first, last = motion.heel_strikes["left"][0], motion.heel_strikes["left"][-1]
    travel = motion.joints_m[last, 0] - motion.joints_m[first, 0]
    facing = motion.anatomical_rotations[first:last, 0, :, 2].mean(axis=0)  # S1's mean anterior axis
    off_deg = np.degrees(np.arctan2(travel[0], travel[2]) - np.arctan2(facing[0], facing[2]))
    # the truth's heel strikes come from its feet, the straightening's from the captured phase
    assert abs(off_deg) < 0.3


def test_rom_scale_half_gives_half_the_lumbar_rom(walks):
    _, normal = walks["normal"]
    _, stiff = walks["stiff"]
    for plane in ("sagittal", "frontal", "transverse"):
        np.testing.assert_allclose(_rom(stiff, plane) / _rom(normal, plane), 0.5, atol=0.02)
    # the pelvis is not scaled
    np.testing.assert_allclose(
        stiff["pelvic_range_deg"]["tilt"]["mean"], normal["pelvic_range_deg"]["tilt"]["mean"]
    )


def test_lumbar_scale_and_asymmetry_keep_the_thoracic_motion(walks):
    """The thoracic levels move alike whatever the lumbar scale and asymmetry, so that the thorax
    turns and bends with the lumbar spine (the phenotype shows in the shoulders)."""
    l1, t1 = VERTEBRA_NAMES.index("L1"), VERTEBRA_NAMES.index("T1")

    def thoracic_deg(motion):
        return np.degrees(lumbar_angles(motion.anatomical_rotations, l1, t1))

    def trunk_transverse_range_deg(motion):
        return np.ptp(np.degrees(lumbar_angles(motion.anatomical_rotations, 0, t1))[:, 2])

    normal, stiff, antalgic = (walks[name][0] for name in ("normal", "stiff", "antalgic"))
    np.testing.assert_allclose(thoracic_deg(stiff), thoracic_deg(normal), atol=0.01)
    np.testing.assert_allclose(thoracic_deg(antalgic), thoracic_deg(normal), atol=0.01)
    # half the lumbar rotation (6 to 10 deg at scale 1) takes at least 1.5 deg off the trunk's
    assert trunk_transverse_range_deg(stiff) < trunk_transverse_range_deg(normal) - 1.5


def test_asymmetry_raises_the_symmetry_index(walks):
    _, normal = walks["normal"]
    _, antalgic = walks["antalgic"]
    assert normal["symmetry_index_pct"]["spinal"] < 5.0
    assert antalgic["symmetry_index_pct"]["spinal"] > normal["symmetry_index_pct"]["spinal"] + 15.0
    # asymmetry keeps the ranges
    np.testing.assert_allclose(_rom(antalgic, "frontal"), _rom(normal, "frontal"), rtol=0.05)


def test_spine_profile_and_placement_inside_the_trunk(walks):
    motion, _ = walks["normal"]
    spine = motion.rest_spine
    assert LORDOSIS_RANGE_DEG[0] <= spine.profile.lordosis_deg <= LORDOSIS_RANGE_DEG[1]
    assert KYPHOSIS_RANGE_DEG[0] <= spine.profile.kyphosis_deg <= KYPHOSIS_RANGE_DEG[1]
    # S1 .. C7 go up; every vertebral body centre lies between the back and front surfaces, at least 3 cm in
    heights = spine.origins_m[:, 1]
    assert np.all(np.diff(heights) > 0)
    body = rest_body(motion.phenotype, motion.spine_bends_rad)
    for origin in spine.origins_m:
        back, front = back_surface_z(body.vertices_m, origin[1])
        assert back + 0.03 < origin[2] < front - 0.03
    # the curve frames' tangents follow the chain
    chords = np.diff(spine.origins_m, axis=0)
    chords /= np.linalg.norm(chords, axis=1, keepdims=True)
    tangents = spine.rotations[:, :, 1]
    assert np.all(np.einsum("ij,ij->i", chords, 0.5 * (tangents[1:] + tangents[:-1])) > 0.99)


def test_the_body_shows_the_drawn_curvature_on_its_back(walks):
    """The truth's curvature is the drawn one, and the walking body's back shows it, read as the
    pipeline reads a back; Anny's own back (unbent) shows another."""
    motion, _ = walks["normal"]
    truth = motion.rest_spine.profile
    drawn = sample_profile(np.random.default_rng([7, 2]))  # body seed 7
    assert truth.lordosis_deg == pytest.approx(drawn.lordosis_deg, abs=1.0)
    assert truth.kyphosis_deg == pytest.approx(drawn.kyphosis_deg, abs=1.0)
    body = rest_body(motion.phenotype, motion.spine_bends_rad)
    s1, c7 = rest_anchors(body)
    unbent = rest_body(motion.phenotype)
    assert (
        abs(
            rest_back_profile(unbent.vertices_m, s1, c7, unbent.stature_m)[0].lordosis_deg
            - truth.lordosis_deg
        )
        > 15
    )
    # every 10th frame's mesh, brought back into the rest frame by the pelvis (S1) motion: the
    # lordosis on its back moves with the walk's lumbar flexion about the truth's
    lordosis = []
    for frame in range(0, len(motion.vertices_m), 10):
        pelvis = motion.anatomical_rotations[frame, 0]
        local = (motion.vertices_m[frame] - motion.joints_m[frame, 0]) @ pelvis + body.joints_m[0]
        lordosis.append(rest_back_profile(local, s1, c7, body.stature_m)[0].lordosis_deg)
    assert np.mean(lordosis) == pytest.approx(truth.lordosis_deg, abs=4.0)
    # the strip's lowest levels lie on the buttocks, which follow the thighs under the pelvis: 15.4
    # deg here since the walks are straightened by whole strides (the thighs' yaw under the pelvis
    # changed by 1.8 deg), 9.5 before
    assert np.ptp(lordosis) < 16.0


def test_same_settings_same_truth(walks, mocap_dir):
    motion, _ = walks["normal"]
    again = make_motion(GaitSettings(3, 7, 90, 30.0, 1.0, 0.0), mocap_dir)
    np.testing.assert_array_equal(again.vertices_m, motion.vertices_m)
    np.testing.assert_array_equal(again.vertebrae_m, motion.vertebrae_m)
    assert again.heel_strikes == motion.heel_strikes


def test_without_the_mocap_folder_a_procedural_walk_stands_in(tmp_path):
    motion = make_motion(GaitSettings(3, 7, 90, 30.0, 1.0, 0.0), tmp_path / "absent")
    assert motion.source.startswith("procedural")
    metrics = spine_metrics(motion.anatomical_rotations, motion.joints_m[:, 0], motion.heel_strikes)
    assert metrics["cycles"] == {"count": 2, "source": "heel_strikes"}
    # about 1.1 s strides: consecutive left heel strikes 30 to 36 frames apart
    assert all(30 <= b - a <= 36 for a, b in itertools.pairwise(motion.heel_strikes["left"]))
    # walking forward at a normal speed for the body's size (1.0 to 1.6 m/s)
    speed = (motion.joints_m[-1, 0, 2] - motion.joints_m[0, 0, 2]) / (89 / 30.0)
    assert 1.0 < speed < 1.6


def _walk_block(motion, fps: float = 30.0) -> dict:
    return walk_metrics(motion.anatomical_rotations, motion.joints_m, motion.heel_strikes, fps)[0]


def test_coordination_phase_sets_the_thorax_pelvis_relative_phase(walks, mocap_dir):
    motion, _ = walks["normal"]
    # the default: healthy walking's phase at the walk's speed
    block = _walk_block(motion)
    speed = block["gait"]["walking_speed_m_s"]
    assert 0.8 < speed < 1.6
    assert motion.coordination_phase_deg == pytest.approx(healthy_relative_phase_deg(speed), abs=3.0)
    assert block["coordination_deg"]["transverse"]["mean"] == pytest.approx(
        motion.coordination_phase_deg, abs=3
    )
    for phase in (20.0, 110.0):
        shifted = make_motion(GaitSettings(3, 7, 90, 30.0, 1.0, 0.0, coordination_phase_deg=phase), mocap_dir)
        shifted_block = _walk_block(shifted)
        assert shifted_block["coordination_deg"]["transverse"]["mean"] == pytest.approx(phase, abs=3.0)
        # the phase moves the thorax only: the pelvis, lumbar spine and legs are those of the walk
        assert shifted_block["lumbar_rom_deg"] == block["lumbar_rom_deg"]
        assert shifted_block["gait"] == block["gait"]
    with pytest.raises(HMNError, match=r"^--coordination-phase: must be 0 to 180 degrees, got 200"):
        check_settings(SynthSettings(seed=0, body_seed=0, coordination_phase_deg=200.0))


def test_truth_gait_markers_are_those_of_the_true_body(walks):
    motion, _ = walks["normal"]
    gait = _walk_block(motion)["gait"]
    strikes = motion.heel_strikes
    stride_frames = [b - a for side in strikes.values() for a, b in itertools.pairwise(side)]
    # cadence = 2 steps per stride: within a frame's rounding of 120 / mean stride time
    assert gait["cadence_steps_per_min"] == pytest.approx(120 / (np.mean(stride_frames) / 30.0), rel=0.05)
    # stride length ~ speed x stride time (the pelvis and the feet travel together)
    assert gait["stride_length_m"]["mean"] == pytest.approx(
        gait["walking_speed_m_s"] * np.mean(stride_frames) / 30.0, rel=0.05
    )
    # adult stride lengths are about 0.8 to 0.9 statures; accept 0.5 to 1.0 for a slow to brisk walk
    assert 0.5 < gait["stride_length_m"]["mean"] / motion.stature_m < 1.0
