"""A reconstruction as a Blender scene: the subject, its camera with the video behind, the metrics.

Used by the add-on's operators (in the open file) and by ``run`` (:func:`write_scene_blend`,
which writes ``scene.blend`` without touching the open file). The subject is built by
:func:`..scene.build_subject` from :func:`...subject.subject_rig_and_motion`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import bpy
import mathutils
import numpy as np
from scipy.spatial.transform import Rotation

from ..atomic import atomic_path
from ..body.model import BodyModel, load_body_model
from ..errors import HMNError
from ..progress import Progress
from ..reconstruction import Reconstruction
from ..rig import Rig, RigMotion
from ..subject import subject_rig_and_motion
from .scene import Y_UP_TO_Z_UP, build_armature, build_subject, keyframe_motion

SUBJECT_NAME = "HMN subject"
SENSOR_WIDTH_MM = 36.0
# OpenCV's camera axes (x right, y down, z forward) -> Blender's (x right, y up, looking down -z).
_OPENCV_TO_BLENDER_CAMERA = np.diag([1.0, -1.0, -1.0])
# Custom properties of a built subject's armature: report.json's content and the npz it came from.
REPORT_PROPERTY = "hmn_report_json"
RECONSTRUCTION_PROPERTY = "hmn_reconstruction_path"


def camera_settings(K: np.ndarray, image_size: np.ndarray, world_from_camera: np.ndarray) -> dict:
    """Blender camera values matching a pinhole camera (square pixels assumed: fx is used).

    Returns ``matrix_world`` (4, 4, Blender world), ``lens`` and ``sensor_width`` (mm),
    ``sensor_fit``, ``shift_x``/``shift_y`` (fractions of the larger image side) and
    ``resolution`` (width, height).
    """
    width, height = (int(v) for v in image_size)
    larger = max(width, height)
    fit = "HORIZONTAL" if width >= height else "VERTICAL"
    matrix = np.eye(4)
    matrix[:3, :3] = Y_UP_TO_Z_UP @ world_from_camera[:3, :3] @ _OPENCV_TO_BLENDER_CAMERA
    matrix[:3, 3] = Y_UP_TO_Z_UP @ world_from_camera[:3, 3]
    return {
        "matrix_world": matrix,
        "lens": float(K[0, 0]) * SENSOR_WIDTH_MM / larger,
        "sensor_width": SENSOR_WIDTH_MM,
        "sensor_fit": fit,
        "shift_x": (0.5 * width - float(K[0, 2])) / larger,
        "shift_y": (float(K[1, 2]) - 0.5 * height) / larger,
        "resolution": (width, height),
    }


def build_camera(
    reconstruction: Reconstruction, collection: bpy.types.Collection, scene: bpy.types.Scene
) -> bpy.types.Object:
    """The estimated camera, made the scene's camera, with the source video as its background."""
    values = camera_settings(
        reconstruction.camera_K, reconstruction.image_size, reconstruction.world_from_camera
    )
    data = bpy.data.cameras.new(f"{collection.name} camera")
    obj = bpy.data.objects.new(data.name, data)
    collection.objects.link(obj)
    obj.matrix_world = mathutils.Matrix(values["matrix_world"].tolist())
    for key in ("lens", "sensor_width", "sensor_fit", "shift_x", "shift_y"):
        setattr(data, key, values[key])
    data.clip_start, data.clip_end = 0.05, 200.0
    scene.camera = obj
    scene.render.resolution_x, scene.render.resolution_y = values["resolution"]
    scene.render.resolution_percentage = 100
    video = Path(reconstruction.video_path) if reconstruction.video_path else None
    if video is not None and video.is_file():
        clip = bpy.data.movieclips.load(str(video.resolve()), check_existing=True)
        background = data.background_images.new()
        background.source = "MOVIE_CLIP"
        background.clip = clip
        background.alpha = 1.0
        data.show_background_images = True
    return obj


def build_scene(
    reconstruction: Reconstruction,
    report: dict | None,
    scene: bpy.types.Scene,
    body: BodyModel | None = None,
    progress: Progress | None = None,
    reconstruction_path: str | os.PathLike | None = None,
) -> tuple[bpy.types.Object, bpy.types.Object, bpy.types.Object]:
    """The subject's collection in ``scene``: keyframed armature + mesh, camera, markers, metric curves.

    ``report`` (report.json's content) and ``reconstruction_path`` (the npz, for the exports; may
    be Blender-relative, ``//name.npz``) are kept on the armature, which becomes the active object.
    Returns (armature, mesh, camera).
    """
    progress = progress or Progress()
    progress(0.0, "body model")
    body = body or load_body_model(reconstruction.body_model)
    progress(0.1, "rig")
    rig, motion = subject_rig_and_motion(reconstruction, body)
    progress(0.3, "armature, mesh and keyframes")
    armature, mesh = build_subject(rig, motion, SUBJECT_NAME, scene)
    collection = armature.users_collection[0]
    progress(0.9, "camera")
    camera = build_camera(reconstruction, collection, scene)
    armature[REPORT_PROPERTY] = json.dumps(report or {})
    armature[RECONSTRUCTION_PROPERTY] = str(reconstruction_path or "")
    scene.view_layers[0].objects.active = armature
    progress(1.0, "scene built")
    return armature, mesh, camera


# The kinds of data-block a built scene creates (removed again once written to a .blend).
_ID_COLLECTIONS = (
    "scenes",
    "collections",
    "objects",
    "armatures",
    "meshes",
    "cameras",
    "actions",
    "movieclips",
)


def _all_ids() -> set[bpy.types.ID]:
    return {datablock for collection in _ID_COLLECTIONS for datablock in getattr(bpy.data, collection)}


def write_scene_blend(
    reconstruction: Reconstruction,
    report: dict | None,
    blend_path: str | os.PathLike,
    progress: Progress | None = None,
    body: BodyModel | None = None,
    reconstruction_path: str | os.PathLike | None = None,
) -> Path:
    """Write ``blend_path`` (atomically) holding one scene built from ``reconstruction``.

    Works in any Blender session without changing its open file: the scene is built in a new
    scene, written with ``bpy.data.libraries.write`` and removed again. Call from Blender's
    main thread. ``reconstruction_path`` defaults to ``reconstruction.npz`` beside the .blend
    (stored relative to it, so the folder can move).
    """
    progress = progress or Progress()
    reconstruction_path = reconstruction_path or "//reconstruction.npz"
    before = _all_ids()
    scene = bpy.data.scenes.new("HumanMoveNet")
    try:
        with progress.stage(0.0, 0.9, "scene") as stage:
            build_scene(reconstruction, report, scene, body, stage, reconstruction_path)
        progress(0.95, "writing the .blend")
        with atomic_path(blend_path) as tmp:
            bpy.data.libraries.write(str(tmp), {scene}, path_remap="ABSOLUTE", fake_user=False)
    finally:
        remove_ids(_all_ids() - before)
    progress(1.0, "scene written")
    return Path(blend_path)


def remove_ids(ids: set[bpy.types.ID]) -> None:
    """Delete the given data-blocks (e.g. a scene built then written elsewhere)."""
    if ids:
        bpy.data.batch_remove(list(ids))


def load_report(armature: bpy.types.Object) -> dict:
    """The report.json content a built subject carries (empty if none)."""
    text = armature.get(REPORT_PROPERTY)
    if text is None:
        raise HMNError(armature.name, "is not a HumanMoveNet subject (no report attached)")
    return json.loads(text)


def time_keyframing(frames: int = 3000, bones: int = 43) -> float:
    """Seconds to keyframe ``frames`` frames of ``bones`` bones (the bench's Blender check, target <= 2 s).

    Times :func:`..scene.keyframe_motion` on a chain armature in a throwaway scene, then removes
    everything it made.
    """
    rng = np.random.default_rng(0)
    rig = Rig(
        bone_names=tuple(f"bone{b}" for b in range(bones)),
        parents=np.arange(-1, bones - 1),
        rest_heads_m=np.cumsum(np.tile([0.0, 0.05, 0.0], (bones, 1)), axis=0),
        rest_vertices_m=np.zeros((0, 3)),
        faces=np.zeros((0, 3), dtype=int),
        skin_weights=np.zeros((0, bones)),
    )
    rotvec = 0.2 * np.sin(np.linspace(0, 20, frames))[:, None, None] * rng.normal(size=(1, bones, 3))
    rotations = Rotation.from_rotvec(rotvec.reshape(-1, 3)).as_matrix().reshape(frames, bones, 3, 3)
    motion = RigMotion(rotations, np.zeros((frames, 3)), 30.0, {"curve_deg": np.zeros(frames)}, {})
    before = _all_ids()
    scene = bpy.data.scenes.new("HMN keyframing bench")
    try:
        armature = build_armature(rig, "bench rig", scene.collection, scene)
        start = time.perf_counter()
        keyframe_motion(rig, motion, armature)
        return time.perf_counter() - start
    finally:
        remove_ids(_all_ids() - before)
