"""Video input: probe a clip, then stream its frames upright, downscaled, with real timestamps.

Frames are decoded one at a time (never the whole clip in memory). Phone clips carry their
orientation as a rotation tag (the MP4/MOV track matrix); OpenCV 4.11 reports it
(``CAP_PROP_ORIENTATION_META``) but this module switches OpenCV's own auto-rotation off and rotates
each frame itself, so that the behaviour does not depend on the OpenCV build. Timestamps are the
container's (``CAP_PROP_POS_MSEC`` after each read), so variable-frame-rate clips keep their real
timing. Frames larger than ``max_side`` are downscaled for detection; :attr:`Frame.scale` maps
their pixels back to full-resolution pixels.

The only camera metadata read is Apple's QuickTime key
``com.apple.quicktime.camera.focal_length.35mm_equivalent`` (iPhone clips); other clips have no
focal length in their metadata and ``focal_px`` is None.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import HMNError

MIN_DURATION_S = 1.0
FOCAL_35MM_KEY = b"com.apple.quicktime.camera.focal_length.35mm_equivalent"
FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)  # the 35 mm film frame that "35 mm equivalent" refers to
_ROTATE_CODES = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


@dataclass(frozen=True)
class VideoInfo:
    """What a clip is, as displayed (after its rotation tag).

    ``frames`` and ``duration_s`` are the container's figures (``duration_s = frames / fps``);
    :func:`iter_frames` gives the real per-frame timestamps. ``width``/``height`` are upright
    full-resolution pixels. ``rotation_deg`` (0, 90, 180, 270) is the clockwise rotation applied
    to decoded frames. ``focal_px`` is the focal length in upright full-resolution pixels from
    the clip's metadata, None when it has none.
    """

    path: Path
    frames: int
    fps: float
    width: int
    height: int
    rotation_deg: int
    duration_s: float
    focal_px: float | None


@dataclass(frozen=True)
class Frame:
    """One decoded frame: ``image`` (h, w, 3) uint8 RGB, upright, at most ``max_side`` pixels on
    its long side; ``scale`` = full-resolution pixels per image pixel (>= 1); ``time_s`` the
    container's presentation time in seconds; ``index`` from 0 in decoding order."""

    index: int
    time_s: float
    image: np.ndarray
    scale: float


def _open(path: Path) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not capture.isOpened():
        raise HMNError(path, "not a video file (no decoder could open it)")
    capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)  # rotate explicitly below, whatever the build does
    return capture


def _rotation_deg(capture: cv2.VideoCapture) -> int:
    """Clockwise display rotation from the track matrix, snapped to a multiple of 90 degrees."""
    angle = capture.get(cv2.CAP_PROP_ORIENTATION_META)
    if not math.isfinite(angle) or abs(angle) > 720:  # OpenCV reports INT_MIN for a degenerate matrix
        return 0
    return round(angle / 90.0) % 4 * 90


def _iter_boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) of the ISO-BMFF boxes in ``data[start:end]``."""
    while start + 8 <= end:
        size, kind = struct.unpack(">I4s", data[start : start + 8])
        header = 8
        if size == 1 and start + 16 <= end:
            size, header = struct.unpack(">Q", data[start + 8 : start + 16])[0], 16
        elif size == 0:
            size = end - start
        if size < header or start + size > end:
            return
        yield kind, start + header, start + size
        start += size


def _read_moov(path: Path) -> bytes:
    """The ``moov`` box of an MP4/MOV file (small, wherever it sits), or b"" if there is none."""
    with path.open("rb") as handle:
        file_size = handle.seek(0, os.SEEK_END)
        offset = 0
        while offset + 8 <= file_size:
            handle.seek(offset)
            header = handle.read(16)
            size, kind = struct.unpack(">I4s", header[:8])
            if size == 1 and len(header) == 16:
                size = struct.unpack(">Q", header[8:16])[0]
            elif size == 0:
                size = file_size - offset
            if size < 8:
                return b""
            if kind == b"moov":
                handle.seek(offset)
                return handle.read(size)
            offset += size
    return b""


def _quicktime_metadata_number(moov: bytes, key: bytes) -> float | None:
    """A numeric value of a QuickTime ``mdta`` key (moov/meta/keys + ilst), None if absent."""
    for kind, start, end in _iter_boxes(moov, 8, len(moov)):
        if kind != b"meta":
            continue
        # QuickTime's meta is a plain box, ISO's a full box (4 more bytes): find where children start
        if moov[start + 4 : start + 8] not in (b"hdlr", b"keys", b"ilst"):
            start += 4
        children = {k: (s, e) for k, s, e in _iter_boxes(moov, start, end)}
        if b"keys" not in children or b"ilst" not in children:
            continue
        keys_start, keys_end = children[b"keys"]
        names = [(k, moov[s:e]) for k, s, e in _iter_boxes(moov, keys_start + 8, keys_end)]
        if (b"mdta", key) not in names:
            continue
        wanted = names.index((b"mdta", key)) + 1  # ilst items are named by their 1-based key index
        for item, item_start, item_end in _iter_boxes(moov, *children[b"ilst"]):
            if struct.unpack(">I", item)[0] != wanted:
                continue
            for data_kind, data_start, data_end in _iter_boxes(moov, item_start, item_end):
                if data_kind == b"data":
                    return _metadata_value(moov[data_start:data_end])
    return None


def _metadata_value(payload: bytes) -> float | None:
    """The number in a QuickTime ``data`` atom (type, locale, value): text, float or integer."""
    type_code, value = struct.unpack(">I", payload[:4])[0] & 0xFFFFFF, payload[8:]
    try:
        if type_code == 1:
            number = float(value.decode("utf-8"))
        elif type_code == 23 and len(value) == 4:
            number = struct.unpack(">f", value)[0]
        elif type_code == 24 and len(value) == 8:
            number = struct.unpack(">d", value)[0]
        elif type_code in (21, 22) and 1 <= len(value) <= 8:
            number = float(int.from_bytes(value, "big", signed=type_code == 21))
        else:
            return None
    except (UnicodeDecodeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def focal_px_from_35mm(focal_35mm: float, width: int, height: int) -> float:
    """Focal length in pixels from a 35 mm-equivalent focal length (mm), matched on the diagonal."""
    return focal_35mm * math.hypot(width, height) / FULL_FRAME_DIAGONAL_MM


def _check_file(path: Path) -> None:
    if not path.exists():
        raise HMNError(path, "file not found")
    if path.is_dir():
        raise HMNError(path, "is a folder, not a video file")
    if path.stat().st_size == 0:
        raise HMNError(path, "empty file (0 bytes)")


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Check that ``path`` is a decodable clip of at least one second and describe it.

    Raises HMNError naming the file when it is missing, empty, not a video (text, a still
    image), has no decodable frame, or is shorter than one second.
    """
    path = Path(path)
    _check_file(path)
    capture = _open(path)
    try:
        frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        if frames <= 0 or not fps > 0:  # FFmpeg opens a still image as a clip of unknown length
            raise HMNError(
                path, "not a video (no frame count or frame rate: a still image or unknown format)"
            )
        ok, first = capture.read()
        if not ok or first is None:
            raise HMNError(path, "no decodable frames")
        rotation = _rotation_deg(capture)
    finally:
        capture.release()
    duration = frames / fps
    if duration < MIN_DURATION_S:
        raise HMNError(path, f"clip too short: {duration:.2f} s (at least {MIN_DURATION_S:g} s is needed)")
    height, width = first.shape[:2]
    if rotation in (90, 270):
        width, height = height, width
    focal_35mm = _quicktime_metadata_number(_read_moov(path), FOCAL_35MM_KEY)
    focal = None if focal_35mm is None else focal_px_from_35mm(focal_35mm, width, height)
    return VideoInfo(path, frames, fps, width, height, rotation, duration, focal)


def detection_scale(width: int, height: int, max_side: int | None) -> float:
    """Full-resolution pixels per detection-image pixel (>= 1) for a ``max_side`` limit."""
    if max_side is None or max(width, height) <= max_side:
        return 1.0
    return max(width, height) / max_side


def iter_frames(
    path: str | os.PathLike, max_side: int | None = None, info: VideoInfo | None = None
) -> Iterator[Frame]:
    """Stream the frames of ``path`` upright, as RGB, downscaled to at most ``max_side`` pixels.

    Probes the clip first (see :func:`probe_video`) unless ``info`` is given, so a bad file fails
    before the first frame. Timestamps come from the container; a non-increasing one (a broken
    container) is replaced by the previous one plus 1/fps.
    """
    info = probe_video(path) if info is None else info
    scale = detection_scale(info.width, info.height, max_side)
    size = (round(info.width / scale), round(info.height / scale))
    if info.rotation_deg in (90, 270):
        size = size[::-1]  # resize the decoded (unrotated) frame, rotate the smaller image after
    # area averaging anti-aliases but costs about 18 ms a 1768x994 frame at a non-integer factor,
    # bilinear 2.5 ms; below a factor of 2 bilinear hardly aliases
    interpolation = cv2.INTER_AREA if scale >= 2.0 else cv2.INTER_LINEAR
    capture = _open(info.path)
    try:
        index, previous = 0, -math.inf
        while True:
            ok, raw = capture.read()
            if not ok or raw is None:
                break
            time_s = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if not time_s > previous:
                time_s = previous + 1.0 / info.fps if index else 0.0
            previous = time_s
            if scale > 1.0:
                raw = cv2.resize(raw, size, interpolation=interpolation)
            if info.rotation_deg:
                raw = cv2.rotate(raw, _ROTATE_CODES[info.rotation_deg])
            yield Frame(index, time_s, cv2.cvtColor(raw, cv2.COLOR_BGR2RGB), scale)
            index += 1
    finally:
        capture.release()
    if index == 0:
        raise HMNError(info.path, "no decodable frames")
