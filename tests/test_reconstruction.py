"""reconstruction.npz: round trip, and clear errors for bad files."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hmn_blender_addon.errors import HMNError
from hmn_blender_addon.reconstruction import Reconstruction, load_reconstruction, save_reconstruction
from hmn_blender_addon.skeleton import VERTEBRA_NAMES


def make_reconstruction(frames: int = 5, seed: int = 0) -> Reconstruction:
    rng = np.random.default_rng(seed)
    vertebrae = len(VERTEBRA_NAMES)
    return Reconstruction(
        fps=30.0,
        frame_times_s=np.arange(frames) / 30.0,
        body_model="open",
        betas=rng.normal(size=10).astype(np.float32),
        global_orient=rng.normal(size=(frames, 3)),
        body_pose=rng.normal(size=(frames, 69)),
        transl=rng.normal(size=(frames, 3)),
        joints_m=rng.normal(size=(frames, 24, 3)),
        vertebrae_m=rng.normal(size=(frames, vertebrae, 3)),
        vertebra_rotations=np.broadcast_to(np.eye(3), (frames, vertebrae, 3, 3)).copy(),
        camera_K=np.array([[1000.0, 0, 320], [0, 1000, 240], [0, 0, 1]]),
        image_size=np.array([640, 480]),
        world_from_camera=np.eye(4),
        present=np.ones(frames, bool),
        heel_strikes_left=np.array([1, 4]),
        heel_strikes_right=np.array([2]),
        video_path="clips/walk é 1.mp4",
    )


def test_round_trip_keeps_every_array(tmp_path):
    original = make_reconstruction()
    path = save_reconstruction(original, tmp_path / "reconstruction.npz")
    loaded = load_reconstruction(path)
    for f in dataclasses.fields(Reconstruction):
        np.testing.assert_array_equal(
            np.asarray(getattr(loaded, f.name)), np.asarray(getattr(original, f.name))
        )
    assert loaded.video_path == "clips/walk é 1.mp4" and loaded.vertebra_names[0] == "S1"
    assert [p.name for p in tmp_path.iterdir()] == ["reconstruction.npz"]


def test_inconsistent_shapes_are_refused_before_writing(tmp_path):
    broken = dataclasses.replace(make_reconstruction(), transl=np.zeros((4, 3)))
    with pytest.raises(HMNError, match=r"transl has shape \(4, 3\), expected \(5, 3\)"):
        save_reconstruction(broken, tmp_path / "reconstruction.npz")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "file not found"),
        (b"", "not a readable reconstruction file"),
        (b"PK\x03\x04 truncated zip", "not a readable reconstruction file"),
    ],
)
def test_bad_files_get_a_clear_error(tmp_path, content, message):
    path = tmp_path / "reconstruction.npz"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(HMNError, match=message) as info:
        load_reconstruction(path)
    assert str(info.value).startswith(str(path))


def test_a_file_missing_arrays_names_them(tmp_path):
    path = tmp_path / "reconstruction.npz"
    np.savez(path, format_version=np.asarray(1), fps=np.asarray(30.0))
    with pytest.raises(HMNError, match="missing arrays: frame_times_s, body_model"):
        load_reconstruction(path)
