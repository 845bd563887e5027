"""Stage cache: content hash, keys per settings, atomic round trip, corrupt entries rebuilt."""

from __future__ import annotations

import hashlib
import os
import shutil

import numpy as np
import pytest

from hmn_blender_addon.cache import load_stage, save_stage, stage_key, stage_path, video_hash


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HMN_CACHE_DIR", str(tmp_path / "cache"))


def _arrays() -> dict[str, np.ndarray]:
    return {
        "landmarks": np.arange(2 * 33 * 3, dtype=np.float32).reshape(2, 33, 3),
        "present": np.array([True, False]),
        "fps": np.array(30.0),
    }


def test_video_hash_is_the_sha256_of_the_content(tmp_path):
    path = tmp_path / "clip.mp4"
    content = bytes(range(256)) * 9000  # more than one read chunk
    path.write_bytes(content)
    assert video_hash(path) == hashlib.sha256(content).hexdigest()
    edited = bytearray(content)
    edited[1_500_000] ^= 1  # same size, one bit in the middle
    path.write_bytes(bytes(edited))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # the memo is per (size, mtime)
    assert (
        video_hash(path) == hashlib.sha256(bytes(edited)).hexdigest() != hashlib.sha256(content).hexdigest()
    )


def test_keys_depend_on_content_stage_and_settings_not_their_order():
    key = stage_key("keypoints", "abc", {"max_side": 960, "complexity": 1})
    assert key == stage_key("keypoints", "abc", {"complexity": 1, "max_side": 960})
    others = {
        stage_key("keypoints", "abd", {"max_side": 960, "complexity": 1}),
        stage_key("fit", "abc", {"max_side": 960, "complexity": 1}),
        stage_key("keypoints", "abc", {"max_side": 640, "complexity": 1}),
    }
    assert key not in others and len(others) == 3


def test_round_trip(tmp_path):
    path = save_stage("keypoints", "k1", _arrays())
    assert path == tmp_path / "cache" / "stages" / "keypoints" / "k1.npz"
    loaded = load_stage("keypoints", "k1")
    assert set(loaded) == set(_arrays())
    for name, array in _arrays().items():
        np.testing.assert_array_equal(loaded[name], array)
        assert loaded[name].dtype == array.dtype
    assert load_stage("keypoints", "other") is None
    assert [p.name for p in path.parent.iterdir()] == ["k1.npz"]  # no temporary left behind


def _flip_array_byte(path):
    data = bytearray(path.read_bytes())
    offset = data.index(np.float32(100.0).tobytes())  # inside the landmarks' raw data
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage",
    [
        lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),  # truncated
        lambda path: path.write_bytes(b"garbage"),
        _flip_array_byte,
        lambda path: shutil.copy(save_stage("keypoints", "k2", _arrays()), path),  # another entry's file
    ],
    ids=["truncated", "garbage", "bit_flip", "wrong_key"],
)
def test_corrupt_entry_is_deleted_and_reported_missing(damage):
    path = save_stage("keypoints", "k1", _arrays())
    damage(path)
    assert load_stage("keypoints", "k1") is None
    assert not path.exists()
    save_stage("keypoints", "k1", _arrays())  # rebuilt
    np.testing.assert_array_equal(load_stage("keypoints", "k1")["landmarks"], _arrays()["landmarks"])


def test_stage_path_is_under_the_cache_folder(tmp_path):
    assert stage_path("fit", "x") == tmp_path / "cache" / "stages" / "fit" / "x.npz"
