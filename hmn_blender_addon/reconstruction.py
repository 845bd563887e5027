"""The result of a run: everything the Blender scene, the reports and the benchmark need.

Saved as ``reconstruction.npz`` (written atomically) so that the scene can be rebuilt without
re-running the video and runs can be compared. Array names are fixed by DESIGN.md section 10;
more keys are welcome. Camera frame = OpenCV's (x right, y down, z forward, metres).
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .errors import HMNError
from .skeleton import NUM_SMPL_JOINTS, VERTEBRA_NAMES

FORMAT_VERSION = 1


@dataclass
class Reconstruction:
    """A subject's motion over T frames (L vertebrae, B shape coefficients).

    - ``fps``: nominal frame rate; ``frame_times_s`` (T,): each frame's timestamp.
    - ``body_model``: "open" or "smpl"; ``betas`` (B,): the clip's one body shape.
    - ``global_orient`` (T, 3), ``body_pose`` (T, 69): SMPL axis-angle rotations (radians),
      global orientation in the camera frame; ``transl`` (T, 3) metres, camera frame.
    - ``joints_m`` (T, 24, 3): SMPL joint centres, camera frame.
    - ``vertebrae_m`` (T, L, 3): vertebra centres, camera frame; ``vertebra_rotations``
      (T, L, 3, 3): each vertebra's anatomical frame (columns x left, y up, z anterior in the
      static posture) in the camera frame; ``vertebra_names`` (L,).
    - ``camera_K`` (3, 3) pixels; ``image_size`` (2,) width, height in pixels.
    - ``world_from_camera`` (4, 4): the lab frame (y up, ground plane y = 0) from the camera frame.
    - ``present`` (T,) bool: frames where the subject was seen (or bridged).
    - ``heel_strikes_left`` / ``heel_strikes_right``: frame indices.
    - ``video_path``: the source clip.
    - ``spine_morphology_json``: report.json's ``spine_morphology`` block (lordosis, kyphosis,
      sacral slope, source) as JSON text.
    """

    fps: float
    frame_times_s: np.ndarray
    body_model: str
    betas: np.ndarray
    global_orient: np.ndarray
    body_pose: np.ndarray
    transl: np.ndarray
    joints_m: np.ndarray
    vertebrae_m: np.ndarray
    vertebra_rotations: np.ndarray
    camera_K: np.ndarray
    image_size: np.ndarray
    world_from_camera: np.ndarray
    present: np.ndarray
    heel_strikes_left: np.ndarray
    heel_strikes_right: np.ndarray
    video_path: str = ""
    spine_morphology_json: str = "{}"
    vertebra_names: tuple[str, ...] = field(default=VERTEBRA_NAMES)

    @property
    def num_frames(self) -> int:
        return int(self.joints_m.shape[0])

    def validate(self, source: str | os.PathLike = "reconstruction") -> None:
        """Raise :class:`HMNError` naming ``source`` if shapes disagree."""
        frames = self.num_frames
        vertebrae = len(self.vertebra_names)
        expected = {
            "frame_times_s": (frames,),
            "global_orient": (frames, 3),
            "body_pose": (frames, 3 * (NUM_SMPL_JOINTS - 1)),
            "transl": (frames, 3),
            "joints_m": (frames, NUM_SMPL_JOINTS, 3),
            "vertebrae_m": (frames, vertebrae, 3),
            "vertebra_rotations": (frames, vertebrae, 3, 3),
            "camera_K": (3, 3),
            "image_size": (2,),
            "world_from_camera": (4, 4),
            "present": (frames,),
        }
        for name, shape in expected.items():
            actual = tuple(np.shape(getattr(self, name)))
            if actual != shape:
                raise HMNError(source, f"{name} has shape {actual}, expected {shape}")
        if self.betas.ndim != 1:
            raise HMNError(source, f"betas has shape {self.betas.shape}, expected (B,)")
        if frames == 0:
            raise HMNError(source, "holds no frames")
        if self.body_model not in ("open", "smpl"):
            raise HMNError(source, f"unknown body model {self.body_model!r}")


_SCALARS = ("fps", "body_model", "video_path", "spine_morphology_json")


def save_reconstruction(reconstruction: Reconstruction, path: str | os.PathLike) -> Path:
    """Write ``reconstruction`` to ``path`` (.npz, compressed) atomically."""
    reconstruction.validate(path)
    arrays = {f.name: np.asarray(getattr(reconstruction, f.name)) for f in fields(reconstruction)}
    arrays["vertebra_names"] = np.asarray(reconstruction.vertebra_names, dtype=str)
    arrays["format_version"] = np.asarray(FORMAT_VERSION)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)
    return Path(path)


def load_reconstruction(path: str | os.PathLike) -> Reconstruction:
    """Read a ``reconstruction.npz``; a missing, corrupt or incomplete file gets a clear error."""
    path = Path(path)
    if not path.is_file():
        raise HMNError(path, "file not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise HMNError(path, f"not a readable reconstruction file ({exc})") from exc
    version = int(arrays.pop("format_version", -1))
    if version != FORMAT_VERSION:
        raise HMNError(path, f"reconstruction format {version}, this version reads {FORMAT_VERSION}")
    missing = [f.name for f in fields(Reconstruction) if f.name not in arrays]
    if missing:
        raise HMNError(path, f"missing arrays: {', '.join(missing)}")
    values = {}
    for f in fields(Reconstruction):
        value = arrays[f.name]
        if f.name in _SCALARS:
            value = value.item()
        elif f.name == "vertebra_names":
            value = tuple(str(name) for name in value)
        values[f.name] = value
    values["fps"] = float(values["fps"])
    reconstruction = Reconstruction(**values)
    reconstruction.validate(path)
    return reconstruction
