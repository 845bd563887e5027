"""Keypoints: MediaPipe on clips with known motion, gaps, a bystander, errors, cache, and the real clip.

Synthetic clips paste a real walker (cut from the Sports2D frame in ../shared/data/images) on a
plain canvas at known positions, so the truth is the paste offset of each frame.
"""

from __future__ import annotations

import gc
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_video import write_clip

from hmn_blender_addon import keypoints as keypoints_module
from hmn_blender_addon.cache import stage_path
from hmn_blender_addon.errors import Cancelled, HMNError
from hmn_blender_addon.keypoints import (
    SIDE_GROUPS,
    Keypoints,
    correct_side_swaps,
    extract_keypoints,
    hip_centre,
    torso_length,
)
from hmn_blender_addon.progress import Progress

CANVAS = (640, 360)  # width, height
FPS = 20.0
SPEED_PX = 5  # walker's paste offset moves this many pixels a frame


@pytest.fixture(scope="session")
def sprite(shared_data) -> np.ndarray:
    """The Sports2D walker (BGR), 156 x 312 px."""
    frame = cv2.imread(str(shared_data / "images" / "sports2d_demo_frame135.jpg"))
    return cv2.resize(frame[470:990, 560:820], (156, 312), interpolation=cv2.INTER_AREA)


def walker_x(index: int) -> int:
    return 60 + SPEED_PX * index


def sprite_clip(
    path: Path, sprite: np.ndarray, frames: int, absent=(), bystander_x: int | None = None
) -> Path:
    """The walker pasted at (walker_x(i), 30) except in frames ``absent``; optionally a still
    bystander (the same sprite, mirrored) at ``bystander_x``, behind the walker."""
    height, width = sprite.shape[:2]

    def make_frame(index: int, canvas_width: int, canvas_height: int) -> np.ndarray:
        frame = np.full((canvas_height, canvas_width, 3), (120, 150, 140), np.uint8)
        if bystander_x is not None:
            frame[40 : 40 + height, bystander_x : bystander_x + width] = sprite[:, ::-1]
        if index not in absent:
            x = walker_x(index)
            frame[30 : 30 + height, x : x + width] = sprite
        return frame

    return write_clip(path, frames, FPS, CANVAS, make_frame)


def hip_offsets(keypoints) -> np.ndarray:
    """Subject's hip centre x minus the walker's paste x, per frame (NaN without subject)."""
    return hip_centre(keypoints.landmarks_px)[:, 0] - np.array(
        [walker_x(i) for i in range(len(keypoints.times_s))]
    )


@pytest.fixture(scope="module")
def walk(tmp_path_factory, sprite):
    path = sprite_clip(tmp_path_factory.mktemp("kp") / "walk.mp4", sprite, frames=40)
    return path, extract_keypoints(path, max_side=None, use_cache=False)


def test_follows_a_walker_at_known_speed(walk):
    _, keypoints = walk
    assert keypoints.detected.all() and not keypoints.interpolated.any()
    assert keypoints.landmarks_px.shape == (40, 33, 3) and keypoints.world_m.shape == (40, 33, 3)
    np.testing.assert_allclose(keypoints.times_s, np.arange(40) / FPS, atol=1e-6)
    offsets = hip_offsets(keypoints)
    assert np.ptp(offsets) < 8.0  # the hips move with the paste offset, 200 px in all
    assert 40 < np.median(offsets) < 120  # and sit inside the 156 px wide walker
    torso = torso_length(keypoints.landmarks_px)
    assert 60 < np.median(torso) < 110 and np.ptp(torso) < 15
    # world landmarks in metres around the hip centre: a torso of about half a metre
    world_torso = torso_length(keypoints.world_m)
    assert 0.35 < np.median(world_torso) < 0.7
    assert np.abs(hip_centre(keypoints.world_m)).max() < 0.05


def test_downscaled_detection_keeps_full_resolution_coordinates(walk):
    path, full = walk
    small = extract_keypoints(path, max_side=320, use_cache=False)
    assert small.detected.all() and (small.width, small.height) == CANVAS
    difference = np.abs(small.landmarks_px[..., :2] - full.landmarks_px[..., :2])
    major = [11, 12, 23, 24, 25, 26, 27, 28]  # shoulders, hips, knees, ankles
    assert np.median(difference[:, major]) < 4.0


def test_person_mask_covers_the_walker(walk):
    _, keypoints = walk
    mask = keypoints.person_mask(10)
    assert mask.shape == (CANVAS[1], CANVAS[0])
    inside = np.zeros_like(mask)
    inside[30 : 30 + 312, walker_x(10) : walker_x(10) + 156] = True
    assert mask.sum() > 0.2 * inside.sum()  # a body, not a speck
    assert (mask & inside).sum() > 0.97 * mask.sum()  # and on the walker
    assert keypoints.masks_packed.nbytes == 40 * 576  # compressed: 576 bytes a frame
    half = keypoints.person_mask(10, shape=(CANVAS[1] // 2, CANVAS[0] // 2))  # for a half-size frame
    downsampled = cv2.resize(
        mask.astype(np.uint8), (CANVAS[0] // 2, CANVAS[1] // 2), interpolation=cv2.INTER_AREA
    )
    assert (half & (downsampled > 0)).sum() > 0.9 * (half | (downsampled > 0)).sum()
    # what the stages after the fit keep: the same masks and timing, no landmarks
    slim = keypoints.without_landmarks()
    np.testing.assert_array_equal(slim.person_mask(10), mask)
    np.testing.assert_array_equal(slim.present, keypoints.present)
    assert slim.times_s is keypoints.times_s and (slim.width, slim.height, slim.fps) == (
        *CANVAS,
        keypoints.fps,
    )
    assert slim.landmarks_px.shape == slim.world_m.shape == (40, 0, 3) and slim.visibility.shape == (40, 0)


def test_short_gaps_are_bridged_long_ones_marked(tmp_path, sprite):
    absent = {20, 21, 22, *range(30, 39)}  # 0.2 s between detections (bridged), then 0.5 s (not)
    path = sprite_clip(tmp_path / "gaps.mp4", sprite, frames=50, absent=absent)
    keypoints = extract_keypoints(path, max_side=None, use_cache=False)
    np.testing.assert_array_equal(np.flatnonzero(~keypoints.detected), sorted(absent))
    np.testing.assert_array_equal(np.flatnonzero(keypoints.interpolated), [20, 21, 22])
    np.testing.assert_array_equal(keypoints.present, ~np.isin(np.arange(50), list(range(30, 39))))
    assert np.isnan(keypoints.landmarks_px[30:39]).all()
    hips = hip_centre(keypoints.landmarks_px)
    np.testing.assert_allclose(hips[21], (hips[19] + hips[23]) / 2, atol=1e-3)  # linear in time
    assert np.ptp(hip_offsets(keypoints)[keypoints.present]) < 8.0


def test_walker_is_kept_when_passing_a_bystander(tmp_path, sprite, monkeypatch):
    # the bystander stands still at x 300..456 from the start, so MediaPipe locks on him first; the
    # walker enters at frame 10 and crosses in front of him (frames 17 to 79)
    path = sprite_clip(tmp_path / "crowd.mp4", sprite, frames=80, absent=range(10), bystander_x=300)
    keypoints = extract_keypoints(path, max_side=None, use_cache=False)
    assert not keypoints.present[:10].any() and keypoints.present[18:].all()
    offsets = hip_offsets(keypoints)[keypoints.detected]
    assert np.all(np.abs(offsets - np.median(offsets)) < 20.0)  # never on the bystander
    # tracks packed every 3 frames (a long clip's every 1,024) give the same subject
    monkeypatch.setattr(keypoints_module, "PACK_EVERY", 3)
    packed = extract_keypoints(path, max_side=None, use_cache=False)
    np.testing.assert_array_equal(packed.detected, keypoints.detected)
    for name in ("landmarks_px", "world_m", "mask_boxes_px"):
        np.testing.assert_allclose(getattr(packed, name), getattr(keypoints, name), atol=1e-3)


def test_walker_toward_the_camera_beats_a_bystander_present_longer(tmp_path, sprite):
    # front view: the walker grows from 0.45 to 1.0 times the sprite (hips at camera height, so
    # they stay put in the image) in frames 27 to 59; the bystander stands still in all 60 frames
    def make_frame(index: int, width: int, height: int) -> np.ndarray:
        frame = np.full((height, width, 3), (120, 150, 140), np.uint8)
        frame[40:352, 20:176] = sprite[:, ::-1]
        if index >= 27:
            scale = 0.45 + 0.55 * (index - 27) / 32
            size = (round(156 * scale), round(312 * scale))
            top, left = 180 - round(0.49 * size[1]), 420 - size[0] // 2
            frame[top : top + size[1], left : left + size[0]] = cv2.resize(
                sprite, size, interpolation=cv2.INTER_AREA
            )
        return frame

    path = write_clip(tmp_path / "front.mp4", 60, FPS, CANVAS, make_frame)
    keypoints = extract_keypoints(path, max_side=None, use_cache=False)
    assert not keypoints.present[:27].any() and keypoints.detected.sum() >= 30
    hips = hip_centre(keypoints.landmarks_px[keypoints.present])
    assert np.all(np.abs(hips[:, 0] - 420) < 40)  # the approaching walker, never the bystander at x 98
    torso = torso_length(keypoints.landmarks_px[keypoints.present])
    assert torso[-1] > 1.8 * torso[0]


def test_a_small_walker_far_from_the_camera_is_found_and_followed(tmp_path, sprite, walk):
    # the walker at a third of the sprite's size, 104 px tall in a 360 px frame: MediaPipe's
    # detector sees the whole frame at 224 px, where the walker is 36 px tall, and finds nobody
    # (it did in none of these frames); the probe's tiles find them and their window follows them
    small = cv2.resize(sprite, (52, 104), interpolation=cv2.INTER_AREA)

    def make_frame(index: int, width: int, height: int) -> np.ndarray:
        frame = np.full((height, width, 3), (120, 150, 140), np.uint8)
        frame[150:254, 100 + 3 * index : 152 + 3 * index] = small
        return frame

    path = write_clip(tmp_path / "far.mp4", 40, FPS, CANVAS, make_frame)
    keypoints = extract_keypoints(path, max_side=None, use_cache=False)
    assert keypoints.detected.all()
    offsets = hip_centre(keypoints.landmarks_px)[:, 0] - (100 + 3 * np.arange(40))
    assert np.ptp(offsets) < 4.0 and 10 < np.median(offsets) < 42  # on the walker, moving with them
    # the same pose as the full-size walker's, at a third of its size
    _, full = walk
    ratio = np.median(torso_length(keypoints.landmarks_px)) / np.median(torso_length(full.landmarks_px))
    assert abs(ratio - 1 / 3) < 0.03
    mask = keypoints.person_mask(20)  # as test_person_mask_covers_the_walker's
    inside = np.zeros_like(mask)
    inside[150:254, 160:212] = True
    assert mask.sum() > 0.2 * inside.sum() and (mask & inside).sum() > 0.97 * mask.sum()


def _moving_points(frames: int) -> Keypoints:
    """Keypoints of 33 points scattered over 200 px, all moving 5 px a frame to the right."""
    base = np.random.default_rng(0).uniform(0, 200, (33, 3)).astype(np.float32)
    landmarks = (
        base + np.array([5.0, 0.0, 0.0], np.float32) * np.arange(frames, dtype=np.float32)[:, None, None]
    )
    return Keypoints(
        landmarks_px=landmarks,
        visibility=np.tile(np.linspace(0.5, 1.0, 33, dtype=np.float32), (frames, 1)),
        world_m=landmarks / 500.0,
        detected=np.ones(frames, dtype=bool),
        interpolated=np.zeros(frames, dtype=bool),
        times_s=np.arange(frames) / 30.0,
        mask_boxes_px=np.zeros((frames, 4), np.float32),
        masks_packed=np.zeros((frames, 576), np.uint8),
        width=640,
        height=360,
        fps=30.0,
    )


def test_brief_left_right_exchanges_are_undone():
    truth = _moving_points(40)
    observed = _moving_points(40)
    observed.detected[[25, 26]] = False  # a gap: frames 27+ are judged on their own
    legs, arms = SIDE_GROUPS
    for group, frames in ((legs, [0, 10, 20, 21, 22, 27]), (arms, [5, 39])):
        for array in (observed.landmarks_px, observed.visibility, observed.world_m):
            array[np.array(frames)[:, None], np.array(group[0] + group[1])] = array[
                np.array(frames)[:, None], np.array(group[1] + group[0])
            ]
    corrected = correct_side_swaps(observed)
    keep = corrected.detected
    np.testing.assert_array_equal(corrected.landmarks_px[keep], truth.landmarks_px[keep])
    np.testing.assert_array_equal(corrected.visibility[keep], truth.visibility[keep])
    np.testing.assert_array_equal(corrected.world_m[keep], truth.world_m[keep])


def test_no_person_in_most_frames_is_an_error_and_caches_nothing(tmp_path, sprite, monkeypatch):
    monkeypatch.setenv("HMN_CACHE_DIR", str(tmp_path / "cache"))
    path = sprite_clip(tmp_path / "empty_scene.mp4", sprite, frames=30, absent=set(range(12, 30)))
    with pytest.raises(HMNError) as raised:
        extract_keypoints(path, max_side=None)
    assert str(raised.value) == f"{path}: no walking person found in 18 of 30 frames (more than half)"
    assert not (tmp_path / "cache" / "stages").exists()


def test_mediapipe_outputs_are_released_without_garbage_collection(tmp_path, sprite):
    """MediaPipe returns a class per call holding its outputs (a reference cycle): the tracking
    loop must drop them itself, or each frame's mask waits for a full garbage collection."""
    path = sprite_clip(tmp_path / "walk.mp4", sprite, frames=40)

    def held_masks() -> int:
        return sum(
            type(o) is type and o.__name__ == "SolutionOutputs" and o.segmentation_mask is not None
            for o in gc.get_objects()
        )

    gc.collect()
    gc.disable()
    try:
        extract_keypoints(path, max_side=None, use_cache=False)
        assert held_masks() == 0  # one per MediaPipe call (40 and more) if left to the collector
    finally:
        gc.enable()


def test_progress_cancellation_and_cache(tmp_path, sprite, monkeypatch):
    monkeypatch.setenv("HMN_CACHE_DIR", str(tmp_path / "cache"))
    path = sprite_clip(tmp_path / "walk.mp4", sprite, frames=25)
    reports = []
    progress = Progress(lambda fraction, message: reports.append(fraction))
    progress.cancel()
    with pytest.raises(Cancelled):
        extract_keypoints(path, max_side=None, progress=progress)
    assert not (tmp_path / "cache" / "stages").exists()

    reports.clear()
    first = extract_keypoints(path, max_side=None, progress=Progress(lambda f, m: reports.append(f)))
    assert len(reports) >= 3 and reports == sorted(reports) and reports[-1] == 1.0
    entries = list((tmp_path / "cache" / "stages" / "keypoints").glob("*.npz"))
    assert len(entries) == 1
    started = time.perf_counter()
    again = extract_keypoints(path, max_side=None)
    assert time.perf_counter() - started < 1.0  # from the cache, no MediaPipe
    for name, array in first.to_arrays().items():
        np.testing.assert_array_equal(getattr(again, name), array)
    entries[0].write_bytes(b"corrupt")
    rebuilt = extract_keypoints(path, max_side=None)
    np.testing.assert_allclose(rebuilt.landmarks_px, first.landmarks_px, atol=1e-4)
    assert stage_path("keypoints", entries[0].stem).stat().st_size > 1000


def test_real_clip_subject_is_the_walker_not_the_background_person(sports2d):
    keypoints, seconds_per_frame = sports2d
    print(
        f"\nSports2D keypoints: {seconds_per_frame * 1000:.1f} ms a frame ({1 / seconds_per_frame:.1f} fps)"
    )
    assert keypoints.landmarks_px.shape == (230, 33, 3) and (keypoints.width, keypoints.height) == (1768, 994)
    frames = np.flatnonzero(keypoints.present)
    # the walker steps out from behind the tree on the right at frame 36 (seen on the frames) and
    # leaves on the left at about frame 200; the background person is there from the start
    assert 34 <= frames[0] <= 46 and 195 <= frames[-1] <= 205
    assert len(frames) == frames[-1] - frames[0] + 1  # no hole while he is in view
    hips = hip_centre(keypoints.landmarks_px[frames])
    torso = torso_length(keypoints.landmarks_px[frames])
    # on the ground (the background person stands on a box, hips above y = 500), at one scale
    assert np.all((hips[:, 1] > 650) & (hips[:, 1] < 800))
    assert np.all((torso > 0.75 * np.median(torso)) & (torso < 1.25 * np.median(torso)))
    # MediaPipe exchanges the legs in single frames (58, 106, 158); none is left
    legs = np.array(SIDE_GROUPS[0])
    points = keypoints.landmarks_px[frames][:, :, :2]
    same = np.linalg.norm(points[1:, legs] - points[:-1, legs], axis=-1).sum(axis=(1, 2))
    crossed = np.linalg.norm(points[1:, legs] - points[:-1, legs[::-1]], axis=-1).sum(axis=(1, 2))
    assert np.all(crossed > 0.5 * same)
    # right to left, monotonically over any 5 frames, about 1400 px in all
    assert np.all(hips[5:, 0] - hips[:-5, 0] < 0)
    assert hips[0, 0] - hips[-1, 0] > 1200


def test_command_line_writes_keypoints_or_fails_cleanly(tmp_path, sprite, monkeypatch, capsys):
    from hmn_blender_addon.cli import main

    monkeypatch.setenv("HMN_CACHE_DIR", str(tmp_path / "cache"))
    path = sprite_clip(tmp_path / "walk.mp4", sprite, frames=25)
    out = tmp_path / "out" / "keypoints.npz"
    assert main(["--quiet", "keypoints", str(path), "--out", str(out), "--max-side", "320"]) == 0
    with np.load(out) as saved:
        assert saved["landmarks_px"].shape == (25, 33, 3) and saved["detected"].all()
    assert f"{path}: 25 frames, 640x360, subject detected in 25, bridged in 0" in capsys.readouterr().out
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    assert main(["--quiet", "keypoints", str(text), "--out", str(tmp_path / "bad.npz")]) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(f"hmn: error: {text}: not a video file (no decoder could open it)")
    )
    assert not (tmp_path / "bad.npz").exists()
