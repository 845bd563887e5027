"""The embedded sample clip that ``demo`` runs on: small, as described, and reproducible from its settings."""

from __future__ import annotations

import json

import cv2
import numpy as np

from hmn_blender_addon.paths import DATA_DIR
from hmn_blender_addon.synth.command import SynthSettings, clip_truth
from hmn_blender_addon.synth.truth import read_masks

SAMPLE = DATA_DIR / "sample_gait.mp4"
TRUTH = DATA_DIR / "sample_gait_truth.json"
MASKS = DATA_DIR / "sample_gait_masks.npz"


def test_sample_is_a_small_side_view_walk_of_two_cycles():
    assert sum(p.stat().st_size for p in (SAMPLE, TRUTH, MASKS)) <= 5 * 1024 * 1024
    video = cv2.VideoCapture(str(SAMPLE))
    assert video.get(cv2.CAP_PROP_FRAME_COUNT) == 90
    assert (video.get(cv2.CAP_PROP_FRAME_WIDTH), video.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (640, 480)
    truth = json.loads(TRUTH.read_text())
    assert truth["video"]["path"] == SAMPLE.name and truth["masks"] == MASKS.name
    assert truth["settings"]["view"] == "side"
    assert truth["metrics"]["cycles"] == {"count": 2, "source": "heel_strikes"}
    assert read_masks(MASKS).shape == (90, 480, 640)


def test_sample_truth_is_reproduced_by_its_recorded_settings(shared_data):
    truth = json.loads(TRUTH.read_text())
    settings = SynthSettings(**truth["settings"])
    _, _, again = clip_truth(settings, shared_data / "mocap" / "cmu_walk")
    np.testing.assert_allclose(again["joints_camera_m"], truth["joints_camera_m"], atol=2e-6)
    np.testing.assert_allclose(again["camera"]["K"], truth["camera"]["K"])
    assert again["heel_strikes"] == truth["heel_strikes"]
    for plane, value in truth["metrics"]["lumbar_rom_deg"].items():
        np.testing.assert_allclose(
            again["metrics"]["lumbar_rom_deg"][plane]["per_cycle"], value["per_cycle"], atol=1e-6
        )
