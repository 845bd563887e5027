"""``truth.json`` of a synthetic clip (DESIGN.md section 10) and its person masks.

Camera-frame arrays use OpenCV axes (x right, y down, z forward, metres), like a reconstruction's
``joints_m``. The SMPL-named joints are the Anny bone heads that the body bridge maps to each SMPL
joint (``anny_bridge.SMPL_DRIVE_BONES``: e.g. pelvis = Anny's root, knee = ``lowerleg01``'s head,
spine1/2/3 = ``spine03``/``spine02``/``spine01``). Beyond section 10's keys: ``vertebra_frames_camera``
(T x 19 x 3 x 3 curve frames, columns x left, y tangent up, z anterior) and
``vertebra_static_frames`` (19 x 3 x 3, the same frames in the static posture, lab axes), from
which section 6's anatomical frames follow (``metrics.angles.anatomical_rotations`` with the
identity as body axes); ``world_to_camera`` leads back to the lab frame (y up, z the direction of
walking, floor y = 0); ``settings``, ``source``, ``trunk_ranges_deg`` and ``coordination_phase_deg``
(the thorax-pelvis phase the trunk model was given) record how the clip was made. ``metrics``
holds the gait markers and the coordination too (``metrics.cycles.walk_metrics``, at the true scale).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..atomic import atomic_path, write_text_atomic
from ..metrics.cycles import walk_metrics
from ..skeleton import SMPL_JOINT_NAMES, VERTEBRA_NAMES
from .camera import Camera, to_camera
from .gait import Motion


def _rounded(array: np.ndarray, decimals: int = 6) -> list:
    return np.round(np.asarray(array, dtype=np.float64), decimals).tolist()


def truth_dict(motion: Motion, camera: Camera, fps: float, settings: dict) -> dict:
    """The JSON-ready truth of a clip."""
    rotation = camera.world_to_camera[:3, :3]
    profile = motion.rest_spine.profile
    frames = motion.joints_m.shape[0]
    return {
        "fps": fps,
        "video": {
            "path": "clip.mp4",
            "frames": frames,
            "fps": fps,
            "width": camera.width,
            "height": camera.height,
        },
        "masks": "masks.npz",
        "body": {
            "model": "anny",
            "height_m": motion.stature_m,
            "sex": motion.phenotype.sex,
            "age_years": motion.phenotype.age_years,
            "phenotype": motion.phenotype.params,
        },
        "camera": {"K": _rounded(camera.K), "world_to_camera": _rounded(camera.world_to_camera)},
        "joint_names": list(SMPL_JOINT_NAMES),
        "joints_camera_m": _rounded(to_camera(motion.joints_m, camera)),
        "vertebra_names": list(VERTEBRA_NAMES),
        "vertebrae_camera_m": _rounded(to_camera(motion.vertebrae_m, camera)),
        "vertebra_frames_camera": _rounded(rotation @ motion.vertebra_rotations),
        "vertebra_static_frames": _rounded(motion.rest_spine.rotations),
        "heel_strikes": motion.heel_strikes,
        "spine_morphology": {
            "lumbar_lordosis_deg": profile.lordosis_deg,
            "thoracic_kyphosis_deg": profile.kyphosis_deg,
            "sacral_slope_deg": profile.sacral_slope_deg,
        },
        "metrics": walk_metrics(
            motion.anatomical_rotations, motion.joints_m, motion.heel_strikes, fps, scale_source="truth"
        )[0],
        "trunk_ranges_deg": asdict(motion.amplitudes),
        "coordination_phase_deg": motion.coordination_phase_deg,
        "source": motion.source,
        "settings": settings,
    }


def write_truth(path: Path, truth: dict) -> None:
    write_text_atomic(path, json.dumps(truth, indent=1))


def write_masks(path: Path, masks: np.ndarray) -> None:
    """(T, H, W) bool masks -> ``path`` (.npz: bit-packed rows plus the shape)."""
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, packed=np.packbits(masks, axis=-1), shape=np.array(masks.shape))


def read_masks(path: Path) -> np.ndarray:
    """Inverse of :func:`write_masks`."""
    with np.load(path) as data:
        shape = tuple(int(v) for v in data["shape"])
        return np.unpackbits(data["packed"], axis=-1, count=shape[-1]).astype(bool).reshape(shape)
