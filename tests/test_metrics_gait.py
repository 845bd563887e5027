"""Gait markers and thorax-pelvis relative phase against walks whose values are known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from hmn_blender_addon.metrics.coordination import coordination_markers, relative_phase_deg
from hmn_blender_addon.metrics.gait import gait_markers, robinson_si_pct, steps
from hmn_blender_addon.skeleton import SMPL_JOINT_INDEX

FPS = 30.0


def _stepping_joints(strikes: dict[str, list[int]], frames: int, speed_m_s: float, heading_deg: float):
    """(T, 24, 3) joints (y up) whose pelvis moves at ``speed_m_s`` along a heading and whose ankles
    stand still between their strikes, each footprint 0.3 m ahead of where the pelvis is at its strike."""
    heading = np.radians(heading_deg)
    forward = np.array([np.sin(heading), 0.0, np.cos(heading)])
    t = np.arange(frames) / FPS
    joints = np.zeros((frames, 24, 3))
    joints[:, :, 1] = 1.0
    pelvis = t[:, None] * speed_m_s * forward
    joints[:, SMPL_JOINT_INDEX["pelvis"]] = pelvis + np.array([0.0, 0.9, 0.0])
    for side, frames_of_side in strikes.items():
        ankle = np.zeros((frames, 3))
        for k, frame in enumerate(frames_of_side):
            end = frames_of_side[k + 1] if k + 1 < len(frames_of_side) else frames
            ankle[frame:end] = pelvis[frame] + 0.3 * forward
        ankle[: frames_of_side[0]] = pelvis[frames_of_side[0]] + 0.3 * forward
        joints[:, SMPL_JOINT_INDEX[f"{side}_ankle"]] = ankle + np.array([0.0, 0.08, 0.0])
    return joints


def test_speed_stride_cadence_and_step_symmetry_by_hand():
    # left steps take 16 frames, right steps 18: stride 34 frames
    strikes = {"left": [10, 44, 78], "right": [26, 60, 94]}
    joints = _stepping_joints(strikes, 110, speed_m_s=1.2, heading_deg=35.0)
    block = gait_markers(joints, strikes, FPS)
    assert block["walking_speed_m_s"] == pytest.approx(1.2, rel=1e-9)
    # a footprint moves with the pelvis: stride = speed * stride time
    assert block["stride_length_m"]["mean"] == pytest.approx(1.2 * 34 / FPS)
    assert block["stride_time_s"]["per_cycle"] == pytest.approx([34 / FPS] * 4)
    assert block["cadence_steps_per_min"] == pytest.approx(60 / (np.mean([16, 18, 16, 18, 16]) / FPS))
    assert block["step_time_s"] == pytest.approx({"left": 18 / FPS, "right": 16 / FPS})
    # step length = how far the pelvis moved since the other foot landed
    assert block["step_length_m"] == pytest.approx({"left": 1.2 * 18 / FPS, "right": 1.2 * 16 / FPS})
    assert block["symmetry_index_pct"]["step_time"] == pytest.approx(100 * 2 / 17)
    assert block["symmetry_index_pct"]["step_length"] == pytest.approx(100 * 2 / 17)
    assert block["scale"] == {"source": "fitted_shape", "factor": 1.0}


def test_scale_multiplies_distances_only():
    strikes = {"left": [10, 44, 78], "right": [27, 61]}
    joints = _stepping_joints(strikes, 100, speed_m_s=1.0, heading_deg=0.0)
    plain = gait_markers(joints, strikes, FPS)
    scaled = gait_markers(joints, strikes, FPS, scale=1.1, scale_source="subject_height")
    assert scaled["walking_speed_m_s"] == pytest.approx(1.1 * plain["walking_speed_m_s"])
    assert scaled["stride_length_m"]["mean"] == pytest.approx(1.1 * plain["stride_length_m"]["mean"])
    assert scaled["cadence_steps_per_min"] == plain["cadence_steps_per_min"]
    assert scaled["scale"] == {"source": "subject_height", "factor": 1.1}
    with pytest.raises(ValueError, match="scale_source"):
        gait_markers(joints, strikes, FPS, scale_source="guess")


def test_steps_need_the_other_foot_before():
    assert steps({"left": [10, 40], "right": [25]}) == [("right", 10, 25), ("left", 25, 40)]
    # a missed right strike: left-to-left is a stride, not a step
    assert steps({"left": [10, 40, 70], "right": [55]}) == [("right", 40, 55), ("left", 55, 70)]
    assert robinson_si_pct(0.5, 0.5) == 0.0 and robinson_si_pct(0.0, 0.0) == 0.0


def test_one_heel_strike_is_not_a_walk():
    joints = _stepping_joints({"left": [10], "right": [30]}, 40, 1.0, 0.0)
    with pytest.raises(ValueError, match="two heel strikes"):
        gait_markers(joints, {"left": [10], "right": []}, FPS)


@pytest.mark.parametrize("offset_deg", [0.0, 20.0, 60.0, 90.0, 150.0, 180.0])
def test_relative_phase_of_shifted_rotations(offset_deg):
    frames, stride = 100, 34
    phi = 2 * np.pi * (np.arange(frames) + 5) / stride
    pelvis = 5.0 * np.cos(phi) + 0.4 * np.cos(2 * phi) + 2.0  # offset and a second harmonic
    thorax = 3.0 * np.cos(phi - np.radians(offset_deg)) + 0.02 * np.arange(frames)  # heading drift
    crp = relative_phase_deg(thorax, pelvis, stride)
    # the harmonic wobbles the phase by a few degrees; folding |CRP| at 0 and 180 turns that into a bias
    assert np.mean(crp) == pytest.approx(offset_deg, abs=3.5)
    assert np.abs(crp - offset_deg).max() < 9.0  # the clip's ends too


def test_coordination_block_per_cycle():
    frames, stride = 103, 34
    phi = 2 * np.pi * np.arange(frames) / stride
    pelvis = np.stack([np.cos(2 * phi), 4 * np.sin(phi), 5 * np.cos(phi)], axis=1)
    thorax = np.stack([np.cos(2 * phi), -2 * np.sin(phi), 4 * np.cos(phi - np.radians(70))], axis=1)
    cycles = [(0, 34), (34, 68), (68, 102)]
    block, curves = coordination_markers(thorax, pelvis, cycles)
    assert block["transverse"]["mean"] == pytest.approx(70.0, abs=1.0)
    assert block["frontal"]["mean"] == pytest.approx(180.0, abs=1.0)
    assert len(block["transverse"]["per_cycle"]) == 3 and block["transverse"]["sd"] < 1.0
    assert curves["transverse"].shape == (frames,)
