"""Heel strikes, cycles, ranges, symmetry index and the metrics block against hand-computed values."""

from __future__ import annotations

import numpy as np

from hmn_blender_addon.metrics.angles import rotation_from_cardan
from hmn_blender_addon.metrics.cycles import (
    cycle_ranges,
    gait_cycles,
    heel_strikes,
    spine_metrics,
    symmetry_index_pct,
)


def test_heel_strikes_are_the_maxima_of_heel_minus_sacrum():
    fps, stride_s = 30.0, 1.1
    t = np.arange(120) / fps
    sacrum = np.stack([np.zeros_like(t), np.ones_like(t), 1.3 * t], axis=1)
    heel = sacrum + np.stack(
        [np.zeros_like(t), -0.9 + 0 * t, 0.35 * np.cos(2 * np.pi * (t - 0.2) / stride_s)], 1
    )
    frames = heel_strikes(heel, sacrum, np.array([0.0, 0.0, 1.0]), fps)
    expected = [round((0.2 + k * stride_s) * fps) for k in range(4)]
    assert frames == expected


def test_cycles_use_the_foot_with_more_complete_cycles():
    assert gait_cycles({"left": [10, 40], "right": [25, 55, 85]}) == [(25, 55), (55, 85)]
    assert gait_cycles({"left": [10, 40], "right": [25, 55]}) == [(10, 40)]
    assert gait_cycles({"left": [10], "right": []}) == []


def test_ranges_and_symmetry_index_by_hand():
    angle = np.array([0.0, 6.0, 0.0, -4.0, -2.0, 0.0, 6.0, 0.0, -4.0, -2.0, 0.0])
    cycles = [(0, 5), (5, 10)]
    np.testing.assert_allclose(cycle_ranges(angle[:, None], cycles)[:, 0], [10.0, 10.0])
    # each cycle's mean is 0: L = 6, R = 4, SI = 100 * 2 / 5
    np.testing.assert_allclose(symmetry_index_pct(angle, cycles), 40.0)
    assert symmetry_index_pct(np.sin(np.linspace(0, 4 * np.pi, 81)), [(0, 40), (40, 80)]) < 1e-6


def test_spine_metrics_block_from_known_waveforms():
    frames = 91
    phase = 2 * np.pi * np.arange(frames) / 30.0  # one cycle every 30 frames
    lumbar = np.radians(np.stack([2.0 * np.cos(2 * phase), 5.0 * np.sin(phase), 4.0 * np.cos(phase)], 1))
    pelvis = np.radians(np.stack([1.5 * np.sin(2 * phase), 4.0 * np.sin(phase), 5.0 * np.cos(phase)], 1))
    s1 = rotation_from_cardan(pelvis)
    l1 = s1 @ rotation_from_cardan(lumbar)
    names = ("S1", "L1")
    anatomical = np.stack([s1, l1], axis=1)
    path = np.stack([np.zeros(frames), np.ones(frames), np.linspace(0, 3, frames)], 1)
    block = spine_metrics(
        anatomical, path, {"left": [0, 30, 60, 90], "right": [15, 45, 75]}, vertebra_names=names
    )
    assert block["cycles"] == {"count": 3, "source": "heel_strikes"}
    rom = block["lumbar_rom_deg"]
    np.testing.assert_allclose(rom["sagittal"]["mean"], 4.0, atol=0.05)
    np.testing.assert_allclose(rom["frontal"]["mean"], 10.0, atol=0.1)
    np.testing.assert_allclose(rom["transverse"]["mean"], 8.0, atol=0.1)
    assert len(rom["frontal"]["per_cycle"]) == 3
    pel = block["pelvic_range_deg"]
    np.testing.assert_allclose(
        [pel[k]["mean"] for k in ("tilt", "obliquity", "rotation")], [3, 8, 10], atol=0.1
    )
    assert block["symmetry_index_pct"]["spinal"] < 2.0
    whole = spine_metrics(anatomical, path, {"left": [0], "right": []}, vertebra_names=names)
    assert whole["cycles"] == {"count": 0, "source": "whole_clip"}
    assert len(whole["lumbar_rom_deg"]["sagittal"]["per_cycle"]) == 1
