"""2D/3D keypoints of the walking subject: MediaPipe Pose over the frame stream.

MediaPipe Pose (0.10.21, ``model_complexity=1``: the model shipped in the wheel; complexity 2
downloads at run time) tracks one person. Clips have bystanders, so this stage follows several
people and picks the walker afterwards:

- every tracked person has their own MediaPipe tracker, fed the frame with the other tracked
  people's boxes blanked out (their own box kept), so a tracker cannot drift onto someone else;
- every ``PROBE_INTERVAL_S`` (every frame while nobody is tracked) a spare tracker looks at the
  frame with all tracked people blanked out; a person it finds starts a new track, which is then
  followed back through the last ``BACKFILL_S`` of frames (kept downscaled in a ring buffer), as
  MediaPipe's tracker keeps people that its detector misses (partly hidden, small, backlit);
- MediaPipe's person detector sees its whole input at 224 px and misses people far from the
  camera (a walker 130 to 230 px tall in a 640 x 480 front view went unseen for 64 frames, the
  backfill recovering 30 of them). So while nobody is tracked, every ``BACKFILL_S`` a probe that
  finds nobody in the frame looks in overlapping tiles of it, halves then two thirds
  (:func:`_tiles`; a clip without anyone then costs 1.7 times as much a frame); a person found
  whole in one is tracked in a window 1.6 times their size around them, scaled to the frame's
  size (:func:`_window`), which moves with them and keeps its size until they outgrow it (a
  tracker's state is in its input's coordinates: :func:`_follow`), until it would be the frame;
- a track ends when its person is lost, or splits when the hip centre jumps or the torso
  changes size more than a walking person can between frames (MediaPipe switched person);
- afterwards, track fragments whose ends agree in time, position and size are chained, and the
  subject is the chain with the largest ``frames x (1 + progression)``, where progression is how
  far its hip centre travels, in torso lengths, across the image and in depth (from the change
  of the torso's length), so that walks toward the camera count as well.

Brief left/right exchanges of a leg or arm pair (MediaPipe's common error on the far side in
side views) are undone (:func:`correct_side_swaps`). Frames without the subject are marked; gaps
of at most ``MAX_BRIDGE_S`` between two detections are bridged by linear interpolation and
flagged. The person mask is kept per frame as a ``MASK_SHAPE`` binary crop of the person's box,
bit-packed (576 bytes a frame).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import time
from collections import deque
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, fields, replace
from pathlib import Path

import cv2
import numpy as np

from .atomic import atomic_path
from .cache import load_stage, save_stage, stage_key, video_hash
from .errors import HMNError
from .progress import Progress
from .skeleton import MEDIAPIPE_LANDMARK_NAMES
from .video import Frame, VideoInfo, iter_frames, probe_video

KEYPOINTS_VERSION = 5  # bump when the output of this stage changes (invalidates cached entries)
NUM_LANDMARKS = len(MEDIAPIPE_LANDMARK_NAMES)
MODEL_COMPLEXITY = 1
DEFAULT_MAX_SIDE = 960
MASK_SHAPE = (96, 48)  # (rows, cols) of the stored person-box mask
PROBE_INTERVAL_S = 0.5  # the backfill recovers the frames between probes
BACKFILL_S = 1.0  # a newly found person is followed back this far through the buffered frames
MAX_TRACKS = 3  # people followed at once: bounds the cost at MAX_TRACKS MediaPipe calls a frame
BOX_MARGIN = 0.15  # person box = landmarks' extent enlarged by this fraction on each side
# A tracker's window has the frame's aspect and this many times its person's box's size (the
# detector, which sees a face, finds a person from about 70 px of its 224 px input); where that
# is not smaller than the frame, the tracker sees the whole frame. The window follows the box and
# keeps its size while the box fills this share of its height.
WINDOW_PER_BOX = 1.6
WINDOW_FILL = (0.5, 0.75)
# The probe's tiles, these shares of the frame: the detector finds a person from about 70 to 80 px
# of its 224 px input, in a 4:3 frame a person of 42% of its height in the whole frame, 28% in two
# thirds of it, 21% in a half; a person of a quarter of the frame's height (half) stands whole in
# one of the halves (two thirds)
TILE_SHARES = (1 / 2, 2 / 3)
BLANK_VALUE = 128
DUPLICATE_IOU = 0.5  # two trackers on one person: the younger is dropped
PROBE_MAX_IOU = 0.3  # a probe's find overlapping a tracked person is not a new person
JUMP_TORSO_PER_S = 15.0  # hip speed, in torso lengths per second, above which the tracker switched person
MIN_JUMP_TORSO = 0.5
MAX_SCALE_RATIO = 1.5  # torso length ratio between frames (and across a chained gap)
CHAIN_MAX_GAP_S = 1.0
CHAIN_TOLERANCE_TORSO = 0.75  # position tolerance at a chained gap, plus 2 torso lengths per second
FOCAL_GUESS_PER_SIDE = 0.7  # focal length / long side of a phone's main camera (26 mm equivalent, 16:9)
SWAP_RATIO = 0.5  # see correct_side_swaps
MAX_BRIDGE_S = 0.34  # time between the detections around a gap that is bridged (10 frames at 30 fps)
PROGRESS_EVERY = 10  # frames between progress reports (and cancellation checks)
PACK_EVERY = 1024  # observations a track holds as objects before packing them (see _Track)
_HIPS = (MEDIAPIPE_LANDMARK_NAMES.index("left_hip"), MEDIAPIPE_LANDMARK_NAMES.index("right_hip"))
_SHOULDERS = (
    MEDIAPIPE_LANDMARK_NAMES.index("left_shoulder"),
    MEDIAPIPE_LANDMARK_NAMES.index("right_shoulder"),
)


@dataclass
class Keypoints:
    """The walking subject's MediaPipe landmarks over a clip of T frames.

    - ``landmarks_px`` (T, 33, 3) float32: x, y in upright full-resolution pixels; z MediaPipe's
      relative depth (hip centre = 0, smaller = nearer), scaled like x (pixels).
    - ``visibility`` (T, 33) float32 in [0, 1].
    - ``world_m`` (T, 33, 3) float32: MediaPipe world landmarks, metres, origin at the hip
      centre, axes as the image (x right, y down, z away from the camera).
    - ``detected`` (T,) bool: MediaPipe found the subject; ``interpolated`` (T,) bool: a short gap
      bridged by interpolation; landmark arrays are NaN where neither.
    - ``times_s`` (T,) float64: the frames' container timestamps.
    - ``mask_boxes_px`` (T, 4) float32: person box x0, y0, x1, y1 (full-resolution pixels, NaN
      without subject); ``masks_packed`` (T, rows*cols/8) uint8: ``np.packbits`` of the
      ``MASK_SHAPE`` binary person mask resampled to that box.
    - ``width``, ``height`` (px), ``fps``: the clip's upright size and nominal frame rate.
    """

    landmarks_px: np.ndarray
    visibility: np.ndarray
    world_m: np.ndarray
    detected: np.ndarray
    interpolated: np.ndarray
    times_s: np.ndarray
    mask_boxes_px: np.ndarray
    masks_packed: np.ndarray
    width: int
    height: int
    fps: float

    @property
    def present(self) -> np.ndarray:
        """(T,) bool: landmarks available (detected or bridged)."""
        return self.detected | self.interpolated

    def person_mask(self, frame: int, shape: tuple[int, int] | None = None) -> np.ndarray:
        """Bool person mask of one frame, (height, width) or ``shape`` = (rows, cols) for a frame
        scaled to that size; all False without subject."""
        rows, cols = shape or (self.height, self.width)
        mask = np.zeros((rows, cols), dtype=bool)
        box = self.mask_boxes_px[frame] * np.array([cols / self.width, rows / self.height] * 2)
        if not np.isfinite(box).all():
            return mask
        x0, y0 = np.maximum(np.floor(box[:2]).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(box[2:]).astype(int), (cols, rows))
        if x1 <= x0 or y1 <= y0:
            return mask
        crop = np.unpackbits(self.masks_packed[frame])[: MASK_SHAPE[0] * MASK_SHAPE[1]].reshape(MASK_SHAPE)
        mask[y0:y1, x0:x1] = cv2.resize(crop, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST) > 0
        return mask

    def without_landmarks(self) -> Keypoints:
        """The same clip with the landmark arrays emptied to (T, 0, ...): what the stages after the
        fit read (masks, boxes, timing) without a long clip's largest per-frame arrays."""
        empty = np.empty((len(self.times_s), 0, 3), dtype=np.float32)
        return replace(self, landmarks_px=empty, visibility=empty[..., 0], world_m=empty)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {f.name: np.asarray(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Keypoints:
        values = {f.name: arrays[f.name] for f in fields(cls)}
        values.update(width=int(values["width"]), height=int(values["height"]), fps=float(values["fps"]))
        return cls(**values)


def hip_centre(xy: np.ndarray) -> np.ndarray:
    """(..., 33, 2+) landmarks -> (..., 2) midpoint of the hips."""
    return xy[..., _HIPS, :2].mean(axis=-2)


def torso_length(xy: np.ndarray) -> np.ndarray:
    """(..., 33, 2+) landmarks -> (...) distance from the hip midpoint to the shoulder midpoint."""
    return np.linalg.norm(xy[..., _SHOULDERS, :2].mean(axis=-2) - hip_centre(xy), axis=-1)


@dataclass(slots=True)
class _Observation:
    """One MediaPipe result: landmarks normalised (33, 4: x, y, z, visibility), world (33, 3),
    box in detection-image pixels (x0, y0, x1, y1, int), the packed box mask."""

    index: int
    time_s: float
    landmarks: np.ndarray
    world: np.ndarray
    box: np.ndarray
    mask: np.ndarray
    scale: float
    hip_px: np.ndarray
    torso_px: float


def _packed(observations: list[_Observation], name: str) -> np.ndarray:
    """One field of ``observations`` as an array, frames first."""
    return np.array([getattr(o, name) for o in observations])


def _block(observations: list[_Observation]) -> dict[str, np.ndarray]:
    return {f.name: _packed(observations, f.name) for f in fields(_Observation)}


class _Track:
    """One person followed by one MediaPipe tracker (the tracker moves on when the track ends).

    Its observations cover consecutive frames. All but the latest are packed into column blocks
    every ``PACK_EVERY`` frames: a long clip's tens of thousands of small arrays would otherwise
    scatter through the heap and keep pages of it resident after the stage, where a block's large
    columns (landmarks, world landmarks, masks: 400 to 600 KB each) are mapped and unmapped whole.
    """

    def __init__(self, pose, first: _Observation, window: np.ndarray | None = None) -> None:
        self.pose = pose
        # a person found only in a tile is fed this window around them (:func:`_follow`)
        self.window = window
        self.blocks: list[dict[str, np.ndarray]] = []  # packed, in frame order, before ``recent``
        self.recent = [first]  # never empty: its end is the latest observation

    @property
    def last(self) -> _Observation:
        return self.recent[-1]

    @property
    def first_index(self) -> int:
        return int(self.blocks[0]["index"][0]) if self.blocks else self.recent[0].index

    def __len__(self) -> int:
        return sum(len(block["index"]) for block in self.blocks) + len(self.recent)

    def append(self, observation: _Observation) -> None:
        self.recent.append(observation)
        if len(self.recent) > PACK_EVERY:
            self.blocks.append(_block(self.recent[:-1]))
            self.recent = self.recent[-1:]

    def prepend(self, earlier: list[_Observation]) -> None:
        """Add the observations of the frames just before the track's first, in frame order."""
        if earlier:
            self.blocks.insert(0, _block(earlier))

    def column(self, name: str) -> np.ndarray:
        """One field of every observation, frames first."""
        return np.concatenate([block[name] for block in self.blocks] + [_packed(self.recent, name)])

    def box_at(self, index: int) -> np.ndarray | None:
        """The person's box in frame ``index``, None if absent."""
        offset = index - self.first_index
        if offset < 0:
            return None
        for block in self.blocks:
            if offset < len(block["index"]):
                return block["box"][offset]
            offset -= len(block["index"])
        return self.recent[offset].box if offset < len(self.recent) else None


def _same_person(known: _Observation, new: _Observation) -> bool:
    """False when ``new`` cannot be the person of ``known`` one frame away (hip jump or size change)."""
    torso = max(known.torso_px, 1.0)
    allowed = max(MIN_JUMP_TORSO, JUMP_TORSO_PER_S * abs(new.time_s - known.time_s)) * torso
    ratio = max(new.torso_px, 1.0) / torso
    return bool(
        np.linalg.norm(new.hip_px - known.hip_px) <= allowed
        and 1 / MAX_SCALE_RATIO <= ratio <= MAX_SCALE_RATIO
    )


def _new_pose(static: bool = False):
    """A MediaPipe tracker, or with ``static`` a detector that treats every image on its own (the
    probe's tiles: a tracker carries its person's region, and smooths landmarks and masks, in its
    input's coordinates)."""
    import mediapipe as mp  # heavy import, only when keypoints are computed

    return mp.solutions.pose.Pose(
        static_image_mode=static, model_complexity=MODEL_COMPLEXITY, enable_segmentation=True
    )


def _detect(pose, image: np.ndarray, frame: Frame, window: np.ndarray | None = None) -> _Observation | None:
    """MediaPipe on ``image`` (``frame``'s, perhaps blanked), or on its ``window`` (x0, y0, x1, y1
    pixels, int, the image's aspect) scaled to the image's size when given: the person it finds,
    in the frame's coordinates, or None. A tracker must be fed images of one size (its mask
    smoothing blends each mask with the previous one).

    MediaPipe's ``process`` returns a namedtuple class made for the call, its outputs (the
    segmentation mask a float image, 2 MB at 960x540) set as class attributes. A class is a
    reference cycle, so without this they would live until a full garbage collection, which grows
    rarer as a long clip's observations accumulate (resident size climbing 40 MB and more between
    collections); the outputs are dropped as soon as they are read.
    """
    if window is not None:
        x0, y0, x1, y1 = window
        image = cv2.resize(image[y0:y1, x0:x1], image.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    outputs = pose.process(image)
    try:
        return None if outputs.pose_landmarks is None else _observe(outputs, frame, window)
    finally:
        for name in outputs._fields:
            setattr(outputs, name, None)


def _observe(result, frame: Frame, window: np.ndarray | None) -> _Observation:
    """``result`` of MediaPipe on ``frame``'s image or its ``window``, in the frame's coordinates."""
    height, width = frame.image.shape[:2]
    origin, size = (
        (np.zeros(2), np.array([width, height])) if window is None else (window[:2], window[2:] - window[:2])
    )
    landmarks = np.array(
        [(p.x, p.y, p.z, p.visibility) for p in result.pose_landmarks.landmark], dtype=np.float32
    )
    world = np.array([(p.x, p.y, p.z) for p in result.pose_world_landmarks.landmark], dtype=np.float32)
    xy_px = landmarks[:, :2] * size + origin
    landmarks[:, :2] = xy_px / (width, height)  # normalised to the frame; z is scaled like x
    landmarks[:, 2] *= size[0] / width
    low, high = xy_px.min(axis=0), xy_px.max(axis=0)
    margin = (high - low) * BOX_MARGIN
    box = np.concatenate([np.floor(low - margin), np.ceil(high + margin)]).astype(int)
    box = np.clip(box, 0, [width, height, width, height])
    # the box in the mask's pixels (the mask has the image's size, the window scaled to it)
    x0, y0, x1, y1 = np.round((box - np.tile(origin, 2)) * np.tile((width, height) / size, 2)).astype(int)
    x0, x1 = np.clip([x0, x1], 0, width)
    y0, y1 = np.clip([y0, y1], 0, height)
    crop = result.segmentation_mask[y0:y1, x0:x1] if x1 > x0 and y1 > y0 else np.zeros((1, 1), np.float32)
    small = cv2.resize(crop, MASK_SHAPE[::-1], interpolation=cv2.INTER_AREA) > 0.5
    return _Observation(
        frame.index,
        frame.time_s,
        landmarks,
        world,
        box,
        np.packbits(small.ravel()),
        frame.scale,
        hip_centre(xy_px),
        float(torso_length(xy_px)),
    )


def _window(box: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray | None:
    """The window (x0, y0, x1, y1) around ``box`` a tracker is fed: the image's aspect,
    :data:`WINDOW_PER_BOX` times the box on its tighter side, moved inside the image; None where it
    would not be smaller than the image."""
    height, width = image_shape[:2]
    window_height = WINDOW_PER_BOX * max(box[3] - box[1], (box[2] - box[0]) * height / width)
    if window_height >= height:
        return None
    return _centred(box, np.ceil([window_height * width / height, window_height]).astype(int), image_shape)


def _centred(box: np.ndarray, size: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """The window (x0, y0, x1, y1) of ``size`` (width, height) centred on ``box``, moved inside the image."""
    height, width = image_shape[:2]
    centre = (np.asarray(box[:2]) + np.asarray(box[2:])) / 2
    origin = np.clip(np.round(centre - size / 2).astype(int), 0, [width, height] - size)
    return np.concatenate([origin, origin + size])


def _follow(window: np.ndarray | None, box: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray | None:
    """The window to feed a windowed tracker whose person was last in ``box``: centred on the box,
    its size kept while the box fills :data:`WINDOW_FILL` of its height (so the person stands
    where the tracker last saw them, in its input's coordinates, which its state is in), else a
    new :func:`_window`; None (the frame) once that is None. A tracker fed the frame keeps it."""
    if window is None:
        return None
    size = window[2:] - window[:2]
    if not WINDOW_FILL[0] <= (box[3] - box[1]) / size[1] <= WINDOW_FILL[1]:
        return _window(box, image_shape)
    return _centred(box, size, image_shape)


def _tiles(image_shape: tuple[int, ...]) -> list[np.ndarray]:
    """Windows (x0, y0, x1, y1) of each of :data:`TILE_SHARES` of the image's width and height,
    three across and three down, from the top left corner to the bottom right one."""
    height, width = image_shape[:2]
    tiles = []
    for share in TILE_SHARES:
        size = np.round(share * np.array([width, height])).astype(int)
        starts = [
            np.round(np.linspace(0, extent - side, 3)).astype(int)
            for extent, side in zip((width, height), size, strict=True)
        ]
        tiles += [np.array([x0, y0, x0 + size[0], y0 + size[1]]) for y0 in starts[1] for x0 in starts[0]]
    return tiles


def _tile_find(frame: Frame) -> tuple[_Observation | None, object, np.ndarray | None]:
    """A person found whole in one of ``frame``'s :func:`_tiles` by a detector, then by a new
    tracker fed the :func:`_window` around them: (its observation, that tracker, the window), or
    (None, None, None). Whole: their landmarks within the tile, except where the tile's edge is
    the frame's (MediaPipe places a cut-off person's hidden landmarks beyond the image)."""
    height, width = frame.image.shape[:2]
    with closing(_new_pose(static=True)) as detector:
        for tile in _tiles(frame.image.shape):
            found = _detect(detector, frame.image, frame, tile)
            if found is None:
                continue
            xy_px = found.landmarks[:, :2] * (width, height)
            low = np.where(tile[:2] > 0, tile[:2], -np.inf)
            high = np.where(tile[2:] < (width, height), tile[2:], np.inf)
            if (xy_px >= low).all() and (xy_px <= high).all():
                break
        else:
            return None, None, None
    tracker, window = _new_pose(), _window(found.box, frame.image.shape)
    locked = _detect(tracker, frame.image, frame, window)
    if locked is None:
        tracker.close()
        return None, None, None
    return locked, tracker, window


def _blanked(image: np.ndarray, boxes: Sequence[np.ndarray], keep: np.ndarray | None) -> np.ndarray:
    """``image`` with ``boxes`` filled grey, except the region ``keep`` (the tracked person's own box)."""
    if not boxes:
        return image
    out = image.copy()
    for x0, y0, x1, y1 in boxes:
        out[y0:y1, x0:x1] = BLANK_VALUE
    if keep is not None:
        x0, y0, x1, y1 = keep
        out[y0:y1, x0:x1] = image[y0:y1, x0:x1]
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(width, 0) * max(height, 0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _track_people(
    info: VideoInfo, max_side: int | None, progress: Progress
) -> tuple[list[_Track], np.ndarray]:
    """Run the trackers over the stream; returns every track and the frames' timestamps (T,)."""
    tracks: list[_Track] = []
    active: list[_Track] = []
    spare = None
    times: list[float] = []
    probe_every = max(1, round(PROBE_INTERVAL_S * info.fps))
    # the frames a backfill can go back over; the tiles (18 detector calls) are looked in once that
    # span, which the backfill then recovers
    backfill_frames = max(1, round(BACKFILL_S * info.fps))
    recent: deque[Frame] = deque(maxlen=backfill_frames)
    try:
        for frame in iter_frames(info.path, max_side, info):
            times.append(frame.time_s)
            for track in list(active):
                others = [t.last.box for t in active if t is not track]
                track.window = _follow(track.window, track.last.box, frame.image.shape)
                observation = _detect(
                    track.pose, _blanked(frame.image, others, keep=track.last.box), frame, track.window
                )
                if observation is None:
                    active.remove(track)
                    track.pose.close()
                    continue
                if not _same_person(track.last, observation):
                    active.remove(track)
                    successor = _Track(track.pose, observation, track.window)
                    active.append(successor)
                    tracks.append(successor)
                else:
                    track.append(observation)
            for older, younger in [(a, b) for i, a in enumerate(active) for b in active[i + 1 :]]:
                if younger in active and _iou(older.last.box, younger.last.box) > DUPLICATE_IOU:
                    active.remove(younger)
                    younger.pose.close()
            if not active or (frame.index % probe_every == 0 and len(active) < MAX_TRACKS):
                spare = spare or _new_pose()
                blanked = _blanked(frame.image, [t.last.box for t in active], None)
                found, finder, window = _detect(spare, blanked, frame), spare, None
                if found is not None:
                    spare = None
                elif not active and frame.index % backfill_frames == 0:
                    found, finder, window = _tile_find(frame)
                if found is not None:
                    if all(_iou(found.box, t.last.box) < PROBE_MAX_IOU for t in active):
                        active.append(_Track(finder, found, window))
                        tracks.append(active[-1])
                        _backfill(active[-1], frame, recent, tracks)
                    else:
                        finder.close()
            recent.append(frame)
            if frame.index % PROGRESS_EVERY == 0:
                progress(frame.index / max(info.frames, 1), f"frame {frame.index} of {info.frames}")
    finally:
        for track in active:
            track.pose.close()
        if spare is not None:
            spare.close()
    return tracks, np.asarray(times, dtype=np.float64)


def _backfill(track: _Track, found_in: Frame, recent: deque[Frame], tracks: list[_Track]) -> None:
    """Follow a person found by a probe back through the buffered frames, which the probe missed.

    MediaPipe's detector misses people that its tracker follows (partly hidden, small, backlit),
    so a person is often visible some frames before a probe finds them. A fresh tracker locks on
    in ``found_in`` (blanked as for the probe, so it finds the same person, and fed the track's
    window), then goes backwards until it loses the person, jumps, reaches another track's person,
    or runs out of frames.
    """
    if not recent:
        return
    pose, window = _new_pose(), track.window
    try:
        others_now = [b for t in tracks if t is not track and (b := t.box_at(found_in.index)) is not None]
        if _detect(pose, _blanked(found_in.image, others_now, keep=None), found_in, window) is None:
            return
        earlier: list[_Observation] = []
        for frame in reversed(recent):
            first = earlier[-1] if earlier else track.last  # a new track's only observation
            others = [box for t in tracks if t is not track and (box := t.box_at(frame.index)) is not None]
            window = _follow(window, first.box, frame.image.shape)
            observation = _detect(pose, _blanked(frame.image, others, keep=first.box), frame, window)
            if observation is None:
                break
            if not _same_person(first, observation) or any(
                _iou(observation.box, box) > DUPLICATE_IOU for box in others
            ):
                break
            earlier.append(observation)
        track.prepend(earlier[::-1])
    finally:
        pose.close()


def _track_summary(track: _Track) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hip centres (n, 2) and torso lengths (n,) in full-resolution px, times (n,) of a track."""
    scale = track.column("scale")
    hips = track.column("hip_px") * scale[:, None]
    torsos = track.column("torso_px") * scale
    times = track.column("time_s")
    return hips, torsos, times


def _continues(chain: list[_Track], track: _Track) -> float | None:
    """How far (in tolerances) ``track`` starts from where ``chain``'s end predicts; None if too far."""
    hips, torsos, times = _track_summary(chain[-1])
    new_hips, new_torsos, new_times = _track_summary(track)
    gap = new_times[0] - times[-1]
    if not 0 < gap <= CHAIN_MAX_GAP_S:
        return None
    recent = slice(max(len(times) - 5, 0), None)
    span = times[recent][-1] - times[recent][0]
    velocity = (hips[recent][-1] - hips[recent][0]) / span if span > 0 else np.zeros(2)
    predicted = hips[-1] + velocity * gap
    torso = np.median(torsos[recent])
    tolerance = torso * (CHAIN_TOLERANCE_TORSO + 2.0 * gap)
    ratio = new_torsos[0] / max(torso, 1.0)
    distance = np.linalg.norm(new_hips[0] - predicted) / tolerance
    return distance if distance <= 1.0 and 1 / MAX_SCALE_RATIO <= ratio <= MAX_SCALE_RATIO else None


def _chains(tracks: list[_Track]) -> list[list[_Track]]:
    """Fragments of one person's track joined across short gaps (each track joins the closest chain)."""
    chains: list[list[_Track]] = []
    for track in sorted(tracks, key=lambda t: t.first_index):
        options = [(d, c) for c in chains if (d := _continues(c, track)) is not None]
        if options:
            min(options, key=lambda option: option[0])[1].append(track)
        else:
            chains.append([track])
    return chains


def _walking_score(chain: list[_Track], focal_px: float) -> float:
    """frames x (1 + progression), progression = the hip centre's travel in torso lengths.

    Travel across the image is the hip displacement over the torso length; travel in depth
    follows from the torso's change of length in the pinhole model (z = f * torso_m / torso_px),
    which gives ``f * |1/torso_px_end - 1/torso_px_start|`` torso lengths.
    """
    hips, torsos, _ = (np.concatenate(parts) for parts in zip(*map(_track_summary, chain), strict=True))
    ends = slice(None, 5), slice(-5, None)  # medians over a few frames: single torso lengths are noisy
    start, end = (np.median(hips[part], axis=0) for part in ends)
    torso_start, torso_end = (max(float(np.median(torsos[part])), 1.0) for part in ends)
    across = np.linalg.norm(end - start) / max(float(np.median(torsos)), 1.0)
    depth = focal_px * abs(1.0 / torso_end - 1.0 / torso_start)
    return len(hips) * (1.0 + across + depth)


def _subject_arrays(chain: list[_Track], times: np.ndarray, info: VideoInfo) -> Keypoints:
    count = len(times)
    landmarks = np.full((count, NUM_LANDMARKS, 3), np.nan, np.float32)
    visibility = np.full((count, NUM_LANDMARKS), np.nan, np.float32)
    world = np.full((count, NUM_LANDMARKS, 3), np.nan, np.float32)
    boxes = np.full((count, 4), np.nan, np.float32)
    masks = np.zeros((count, MASK_SHAPE[0] * MASK_SHAPE[1] // 8), np.uint8)
    column = lambda name: np.concatenate([track.column(name) for track in chain])  # noqa: E731
    index = column("index")
    normalised = column("landmarks")
    landmarks[index] = normalised[..., :3] * np.array([info.width, info.height, info.width], np.float32)
    visibility[index] = normalised[..., 3]
    world[index] = column("world")
    boxes[index] = column("box") * column("scale")[:, None]
    masks[index] = column("mask")
    detected = np.zeros(count, dtype=bool)
    detected[index] = True
    keypoints = Keypoints(
        landmarks,
        visibility,
        world,
        detected,
        np.zeros(count, dtype=bool),
        times,
        boxes,
        masks,
        info.width,
        info.height,
        info.fps,
    )
    return bridge_gaps(correct_side_swaps(keypoints))


def _side_indices(limb_parts: tuple[str, ...]) -> tuple[list[int], list[int]]:
    return tuple(
        [MEDIAPIPE_LANDMARK_NAMES.index(f"{side}_{part}") for part in limb_parts]
        for side in ("left", "right")
    )


# left/right groups relabelled together: a leg with its hip, an arm with its shoulder and hand
SIDE_GROUPS = (
    _side_indices(("hip", "knee", "ankle", "heel", "foot_index")),
    _side_indices(("shoulder", "elbow", "wrist", "pinky", "index", "thumb")),
)


def correct_side_swaps(keypoints: Keypoints, ratio: float = SWAP_RATIO) -> Keypoints:
    """Undo MediaPipe's brief left/right exchanges of a leg or an arm pair (frequent on the far
    side in side views).

    Between consecutive detections, a group whose left and right image points are much closer
    (sum of distances below ``ratio`` times) to the previous frame's opposite side than to the
    same side flips the labelling. Within each run of consecutive detections, the labelling that
    holds for the minority of frames is taken as the exchanged one (MediaPipe is right most of the
    time) and those frames' landmarks, visibility and world landmarks are swapped back, in place.
    """
    detected = keypoints.detected
    consecutive = detected[1:] & detected[:-1]
    run = np.cumsum(np.concatenate([[True], ~consecutive]))  # id of each frame's run of detections
    run_start = np.flatnonzero(np.concatenate([[True], ~consecutive]))
    xy = keypoints.landmarks_px[..., :2]
    for left, right in SIDE_GROUPS:
        before, after = xy[:-1], xy[1:]
        same = np.linalg.norm(after[:, left] - before[:, left], axis=-1).sum(-1) + np.linalg.norm(
            after[:, right] - before[:, right], axis=-1
        ).sum(-1)
        crossed = np.linalg.norm(after[:, left] - before[:, right], axis=-1).sum(-1) + np.linalg.norm(
            after[:, right] - before[:, left], axis=-1
        ).sum(-1)
        flips = np.concatenate([[0], np.cumsum(consecutive & (crossed < ratio * same))])
        exchanged = (flips - flips[run_start[run - 1]]) % 2  # relative to the run's first frame
        majority = np.bincount(run, weights=exchanged)[run] * 2 > np.bincount(run)[run]
        swap = np.flatnonzero(detected & (exchanged != majority))
        sides = np.array(left + right), np.array(right + left)
        for array in (keypoints.landmarks_px, keypoints.visibility, keypoints.world_m):
            array[swap[:, None], sides[0]] = array[swap[:, None], sides[1]]
    return keypoints


def bridge_gaps(keypoints: Keypoints, max_gap_s: float = MAX_BRIDGE_S) -> Keypoints:
    """Fill runs of undetected frames whose surrounding detections are at most ``max_gap_s``
    apart: landmarks, visibility, world landmarks and mask box interpolated linearly in time,
    the mask copied from the nearer detection; such frames get ``interpolated = True``."""
    found = np.flatnonzero(keypoints.detected)
    missing = np.flatnonzero(~keypoints.detected)
    after = np.searchsorted(found, missing)
    inside = (after > 0) & (after < len(found))
    missing, after = missing[inside], after[inside]
    before_frame, after_frame = found[after - 1], found[after]
    times = keypoints.times_s
    short = times[after_frame] - times[before_frame] <= max_gap_s + 1e-9
    missing, before_frame, after_frame = missing[short], before_frame[short], after_frame[short]
    weight = (times[missing] - times[before_frame]) / (times[after_frame] - times[before_frame])
    for array in (keypoints.landmarks_px, keypoints.visibility, keypoints.world_m, keypoints.mask_boxes_px):
        w = weight.reshape((-1,) + (1,) * (array.ndim - 1)).astype(array.dtype)
        array[missing] = (1 - w) * array[before_frame] + w * array[after_frame]
    nearer = np.where(weight <= 0.5, before_frame, after_frame)
    keypoints.masks_packed[missing] = keypoints.masks_packed[nearer]
    keypoints.interpolated[missing] = True
    return keypoints


def track_subject(
    info: VideoInfo, max_side: int | None = DEFAULT_MAX_SIDE, progress: Progress | None = None
) -> Keypoints:
    """MediaPipe Pose over the clip and the walking subject selected (no cache: :func:`extract_keypoints`)."""
    progress = progress or Progress()
    tracks, times = _track_people(info, max_side, progress)
    count = len(times)
    chains = _chains(tracks)
    focal = info.focal_px or FOCAL_GUESS_PER_SIDE * max(info.width, info.height)
    subject = max(chains, key=lambda chain: _walking_score(chain, focal)) if chains else []
    found = sum(len(t) for t in subject)
    if found * 2 < count:
        raise HMNError(
            info.path, f"no walking person found in {count - found} of {count} frames (more than half)"
        )
    progress(1.0, f"subject in {found} of {count} frames")
    return _subject_arrays(subject, times, info)


def keypoints_settings(max_side: int | None) -> dict:
    """Everything that changes this stage's output, for the cache key."""
    return {
        "version": KEYPOINTS_VERSION,
        "mediapipe": importlib.metadata.version("mediapipe"),  # without importing it (about 1 s)
        "model_complexity": MODEL_COMPLEXITY,
        "max_side": max_side,
    }


def extract_keypoints(
    path: str | os.PathLike,
    max_side: int | None = DEFAULT_MAX_SIDE,
    progress: Progress | None = None,
    use_cache: bool = True,
) -> Keypoints:
    """The walking subject's keypoints of the clip at ``path``, from the stage cache when present.

    Raises HMNError naming the file for a bad clip (see :func:`probe_video`) or when the subject
    is missing in more than half of the frames; nothing is cached then.
    """
    path = Path(path)
    info = probe_video(path)
    key = stage_key("keypoints", video_hash(path), keypoints_settings(max_side)) if use_cache else ""
    cached = load_stage("keypoints", key) if use_cache else None
    if cached is not None:
        return Keypoints.from_arrays(cached)
    keypoints = track_subject(info, max_side, progress)
    if use_cache:
        save_stage("keypoints", key, keypoints.to_arrays())
    return keypoints


def _handle(args: argparse.Namespace, progress: Progress) -> int:
    started = time.perf_counter()
    keypoints = extract_keypoints(args.video, args.max_side, progress, use_cache=not args.no_cache)
    seconds = time.perf_counter() - started
    if args.out is not None:
        with atomic_path(args.out) as tmp:
            np.savez(tmp, **keypoints.to_arrays())
    count = len(keypoints.times_s)
    print(
        f"\n{args.video}: {count} frames, {keypoints.width}x{keypoints.height}, subject detected in "
        f"{int(keypoints.detected.sum())}, bridged in {int(keypoints.interpolated.sum())}; "
        f"{seconds:.1f} s ({1000 * seconds / count:.1f} ms a frame; cached results take no time)"
    )
    return 0


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("keypoints", help="MediaPipe keypoints of the walking subject of a clip")
    parser.add_argument("video", type=Path, help="the clip (MP4, MOV, ...)")
    parser.add_argument("--out", type=Path, help="write the keypoints here (.npz)")
    parser.add_argument(
        "--max-side",
        type=int,
        default=DEFAULT_MAX_SIDE,
        help="detection size limit, pixels (default %(default)s)",
    )
    parser.add_argument("--no-cache", action="store_true", help="recompute even if cached")
    parser.set_defaults(handler=_handle)
