"""Video input: probing, streaming, rotation tag, real timestamps, downscaling, bad files.

Clips are written here with cv2.VideoWriter (MPEG-4 in MP4); the rotation tag, a variable frame
rate and QuickTime metadata are made by editing the written MP4's boxes (no ffmpeg binary here).
"""

from __future__ import annotations

import math
import shutil
import struct
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

from hmn_blender_addon.errors import HMNError
from hmn_blender_addon.video import focal_px_from_35mm, iter_frames, probe_video

MARKER_BGR = (0, 0, 255)  # red top-left quadrant: shows where the image's top-left went


def marker_frame(index: int, width: int, height: int) -> np.ndarray:
    """A BGR frame with a red top-left quadrant and green = 5 * index elsewhere."""
    frame = np.zeros((height, width, 3), np.uint8)
    frame[..., 1] = (5 * index) % 250
    frame[: height // 2, : width // 2] = MARKER_BGR
    return frame


def write_clip(
    path: Path,
    frames: int,
    fps: float = 20.0,
    size: tuple[int, int] = (64, 48),
    make_frame: Callable[[int, int, int], np.ndarray] = marker_frame,
) -> Path:
    """Write ``frames`` BGR frames of ``size`` (width, height) as an MPEG-4 MP4."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened()
    for index in range(frames):
        writer.write(make_frame(index, *size))
    writer.release()
    return path


def _boxes(data: bytes | bytearray, start: int, end: int):
    while start < end:
        size, kind = struct.unpack(">I4s", data[start : start + 8])
        yield kind.decode(), start, size
        start += size


def box_chain(data: bytes | bytearray, names: Sequence[str]) -> list[tuple[int, int]]:
    """(offset, size) of each box along the path ``names`` (e.g. moov, trak, tkhd)."""
    chain, start, end = [], 0, len(data)
    for name in names:
        offset, size = next((o, s) for k, o, s in _boxes(data, start, end) if k == name)
        chain.append((offset, size))
        start, end = offset + 8, offset + size
    return chain


def replace_box(data: bytes, names: Sequence[str], new_box: bytes) -> bytes:
    """Replace the box at ``names`` (the last may be a new child appended to its parent).

    OpenCV writes ``mdat`` before ``moov``, so growing boxes inside moov moves no sample data;
    only the sizes of the enclosing boxes change.
    """
    try:
        chain = box_chain(data, names)
        offset, size = chain.pop()
    except StopIteration:
        chain = box_chain(data, names[:-1])
        offset, size = chain[-1][0] + chain[-1][1], 0
    out = bytearray(data[:offset] + new_box + data[offset + size :])
    for parent_offset, parent_size in chain:
        out[parent_offset : parent_offset + 4] = struct.pack(">I", parent_size + len(new_box) - size)
    return bytes(out)


def set_rotation_tag(path: Path, clockwise_deg: int) -> None:
    """Write a phone-style display matrix (clockwise rotation) into the video track's tkhd."""
    data = bytearray(path.read_bytes())
    offset, _ = box_chain(data, ["moov", "trak", "tkhd"])[-1]
    assert data[offset + 8] == 0  # version 0: the matrix starts 48 bytes into the box
    a = round(math.cos(math.radians(clockwise_deg))) << 16
    b = round(math.sin(math.radians(clockwise_deg))) << 16
    matrix = struct.pack(">9i", a, b, 0, -b, a, 0, 0, 0, 1 << 30)
    data[offset + 48 : offset + 84] = matrix
    path.write_bytes(bytes(data))


def set_frame_durations(path: Path, runs: Sequence[tuple[int, int]]) -> None:
    """Rewrite the sample durations (stts) as runs of (frame count, duration in track ticks)."""
    data = path.read_bytes()
    payload = struct.pack(">II", 0, len(runs)) + b"".join(struct.pack(">II", *run) for run in runs)
    stts = struct.pack(">I4s", 8 + len(payload), b"stts") + payload
    path.write_bytes(replace_box(data, ["moov", "trak", "mdia", "minf", "stbl", "stts"], stts))


def add_focal_35mm(path: Path, focal_35mm: float) -> None:
    """Add Apple's moov/meta (keys + ilst) with camera.focal_length.35mm_equivalent as a float."""
    key = b"mdta" + b"com.apple.quicktime.camera.focal_length.35mm_equivalent"

    def box(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I4s", 8 + len(payload), kind) + payload

    hdlr = box(b"hdlr", bytes(8) + b"mdta" + bytes(13))
    keys = box(b"keys", struct.pack(">II", 0, 1) + struct.pack(">I", 4 + len(key)) + key)
    item = box(struct.pack(">I", 1), box(b"data", struct.pack(">IIf", 23, 0, focal_35mm)))
    meta = box(b"meta", hdlr + keys + box(b"ilst", item))
    path.write_bytes(replace_box(path.read_bytes(), ["moov", "meta"], meta))


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("video") / "clip.mp4", frames=30, fps=20.0)


def test_probe_describes_the_clip(clip):
    info = probe_video(clip)
    assert (info.frames, info.fps, info.width, info.height) == (30, 20.0, 64, 48)
    assert info.rotation_deg == 0
    assert info.duration_s == pytest.approx(1.5)
    assert info.focal_px is None


def test_frames_stream_in_order_with_timestamps(clip):
    frames = list(iter_frames(clip))
    assert [f.index for f in frames] == list(range(30))
    np.testing.assert_allclose([f.time_s for f in frames], np.arange(30) / 20.0, atol=1e-6)
    first = frames[0].image
    assert first.shape == (48, 64, 3) and first.dtype == np.uint8 and frames[0].scale == 1.0
    assert first[5, 5] == pytest.approx([255, 0, 0], abs=12)  # red, now in RGB order
    assert frames[10].image[40, 60, 1] == pytest.approx(50, abs=6)  # green encodes the index


def test_iter_frames_is_a_lazy_stream(clip):
    stream = iter_frames(clip)
    assert next(stream).index == 0
    assert next(stream).index == 1
    stream.close()


@pytest.mark.parametrize("clockwise_deg", [90, 180, 270])
def test_rotation_tag_is_applied(tmp_path, clockwise_deg):
    path = write_clip(tmp_path / "phone.mp4", frames=25, size=(64, 48))
    set_rotation_tag(path, clockwise_deg)
    info = probe_video(path)
    assert info.rotation_deg == clockwise_deg
    expected_size = (48, 64) if clockwise_deg in (90, 270) else (64, 48)
    assert (info.width, info.height) == expected_size
    image = next(iter_frames(path)).image
    assert image.shape[:2] == expected_size[::-1]
    small = next(iter_frames(path, max_side=32))  # downscaled and rotated
    assert small.image.shape[:2] == (expected_size[1] // 2, expected_size[0] // 2) and small.scale == 2.0
    height, width = image.shape[:2]
    # where the red top-left quadrant of the stored frame is displayed after the clockwise turn
    corner = {90: (5, width - 6), 180: (height - 6, width - 6), 270: (height - 6, 5)}[clockwise_deg]
    assert image[corner][0] > 200 and image[corner][2] < 60
    assert image[5, 5][0] < 60  # the displayed top-left is no longer the red corner


def test_variable_frame_rate_uses_container_timestamps(tmp_path):
    path = write_clip(tmp_path / "vfr.mp4", frames=40, fps=20.0)
    ticks = 512  # OpenCV's MP4 writer: timescale 10240 ticks/s, 512 ticks a frame at 20 fps
    set_frame_durations(path, [(20, ticks * 3 // 2), (20, ticks // 2)])  # same total length
    times = np.array([f.time_s for f in iter_frames(path)])
    expected = np.concatenate([np.arange(20) * 0.075, 1.5 + np.arange(20) * 0.025])
    np.testing.assert_allclose(times, expected, atol=1e-6)


def test_large_frames_are_downscaled_with_the_scale_to_full_resolution(tmp_path):
    path = write_clip(tmp_path / "big.mp4", frames=20, fps=20.0, size=(320, 160))
    frame = next(iter_frames(path, max_side=80))
    assert frame.image.shape == (40, 80, 3)
    assert frame.scale == pytest.approx(4.0)
    unscaled = next(iter_frames(path, max_side=1000))
    assert unscaled.image.shape == (160, 320, 3) and unscaled.scale == 1.0


def test_focal_length_from_quicktime_metadata(tmp_path):
    path = write_clip(tmp_path / "iphone.mp4", frames=25, size=(64, 48))
    add_focal_35mm(path, 26.0)
    info = probe_video(path)
    # 35 mm equivalent on the diagonal: 26 mm * 80 px / 43.27 mm
    assert info.focal_px == pytest.approx(26.0 * 80.0 / math.hypot(36.0, 24.0), rel=1e-6)
    assert focal_px_from_35mm(26.0, 1920, 1080) == pytest.approx(
        26.0 * math.hypot(1920, 1080) / 43.2666, rel=1e-4
    )
    assert len(list(iter_frames(path))) == 25  # the added metadata leaves the clip readable


def _bad_inputs(tmp_path: Path, shared_data: Path) -> dict[str, tuple[Path, str]]:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    image = tmp_path / "photo.mp4"
    shutil.copy(shared_data / "images" / "opencv_basketball1.png", image)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    undecodable = write_clip(tmp_path / "zeroed.mp4", frames=30)
    data = bytearray(undecodable.read_bytes())
    mdat, size = box_chain(data, ["mdat"])[0]
    data[mdat + 8 : mdat + size] = bytes(size - 8)  # keep the index, destroy every frame
    undecodable.write_bytes(bytes(data))
    return {
        "missing": (tmp_path / "missing.mp4", "file not found"),
        "empty": (empty, "empty file (0 bytes)"),
        "text": (text, "not a video file (no decoder could open it)"),
        "image": (
            image,
            "not a video (no frame count or frame rate: a still image or unknown format)",
        ),
        "undecodable": (undecodable, "no decodable frames"),
        "short": (
            write_clip(tmp_path / "short.mp4", frames=10, fps=20.0),
            "clip too short: 0.50 s (at least 1 s is needed)",
        ),
        "folder": (tmp_path, "is a folder, not a video file"),
    }


@pytest.mark.parametrize("case", ["missing", "empty", "text", "image", "undecodable", "short", "folder"])
def test_bad_input_is_one_line_naming_the_file(tmp_path, shared_data, case):
    path, problem = _bad_inputs(tmp_path, shared_data)[case]
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(HMNError) as raised:
        probe_video(path)
    assert str(raised.value) == f"{path}: {problem}"
    with pytest.raises(HMNError):
        next(iter_frames(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
