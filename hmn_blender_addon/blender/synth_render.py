"""Render a synthetic walk with Blender: the only bpy part of the ``synth`` command.

Scene: the body mesh animated by a point cache (Blender's Mesh Cache modifier reading a PC2 file
of the core's per-frame vertices, so Blender shows exactly the truth's body), a plain floor, a
soft key light, and the truth's pinhole camera. A second cached mesh, hidden from renders, carries
each vertebra's frame as four points (origin and 1 cm along x, y, z): the tests read the evaluated
scene back through it. Two passes: the video (Workbench by default, or Cycles), written by
Blender's own FFmpeg output as H.264 MP4, then the person masks (Workbench, flat, no floor,
transparent film, no anti-aliasing) read from the alpha channel.

Lab frame (y up) to Blender (Z up): (x, y, z) -> (x, -z, y), done here only.
"""

from __future__ import annotations

import os
import struct
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np

from ..progress import Progress

Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
FRAME_AXIS_M = 0.01  # length of the vertebra frame markers
SKIN_RGB = ((0.80, 0.57, 0.45), (0.62, 0.42, 0.32), (0.45, 0.30, 0.22), (0.93, 0.75, 0.64))
GARMENT_RGB = (
    (0.10, 0.12, 0.35),
    (0.55, 0.08, 0.08),
    (0.08, 0.30, 0.12),
    (0.05, 0.05, 0.05),
    (0.85, 0.85, 0.82),
)
FLOOR_RGB = (0.55, 0.55, 0.52)


@dataclass(frozen=True)
class RenderJob:
    """What to render (lab frame, metres).

    vertices_m: (T, V, 3) body; faces: (F, 3); vertebrae_m: (T, L, 3) and vertebra_rotations:
    (T, L, 3, 3) for the hidden frame markers; face_regions: (F,) skin 0, shorts 1, top 2, coloured
    when ``clothes``; K, world_to_camera: OpenCV camera; engine: "workbench" | "cycles"; seed picks
    the skin tone, the garment colours and Cycles' noise.
    """

    vertices_m: np.ndarray
    faces: np.ndarray
    vertebrae_m: np.ndarray
    vertebra_rotations: np.ndarray
    face_regions: np.ndarray
    clothes: bool
    K: np.ndarray
    world_to_camera: np.ndarray
    width: int
    height: int
    fps: int
    engine: str
    seed: int


def to_z_up(points: np.ndarray) -> np.ndarray:
    """(..., 3) lab-frame points -> Blender world coordinates."""
    return points @ Y_UP_TO_Z_UP.T


def write_pc2(path: Path, frames_points: np.ndarray) -> None:
    """(T, N, 3) points -> a PC2 point cache (Blender's Mesh Cache format), one sample per frame."""
    frames, count, _ = frames_points.shape
    with open(path, "wb") as handle:
        handle.write(b"POINTCACHE2\0" + struct.pack("<iiffi", 1, count, 0.0, 1.0, frames))
        handle.write(np.ascontiguousarray(frames_points, dtype="<f4").tobytes())


def frame_markers(origins_m: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """(T, L, 3) origins and (T, L, 3, 3) frames -> (T, 4L, 3) points: origin, origin + 1 cm x, y, z."""
    tips = origins_m[..., None, :] + FRAME_AXIS_M * np.swapaxes(rotations, -1, -2)  # (T, L, 3 axes, 3)
    return np.concatenate([origins_m[..., None, :], tips], axis=-2).reshape(origins_m.shape[0], -1, 3)


def markers_to_frames(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`frame_markers`: (..., 4L, 3) -> origins (..., L, 3), rotations (..., L, 3, 3)."""
    grouped = points.reshape(*points.shape[:-2], -1, 4, 3)
    origins = grouped[..., 0, :]
    axes = (grouped[..., 1:, :] - origins[..., None, :]) / FRAME_AXIS_M
    return origins, np.swapaxes(axes, -1, -2)


def _cached_mesh(name: str, frames_points: np.ndarray, faces: np.ndarray, cache: Path) -> bpy.types.Object:
    """A mesh object whose vertices follow ``frames_points`` (T, N, 3, Blender coordinates) per frame."""
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(frames_points.shape[1])
    mesh.vertices.foreach_set("co", frames_points[0].astype(np.float32).ravel())
    if len(faces):
        mesh.loops.add(faces.size)
        mesh.loops.foreach_set("vertex_index", faces.astype(np.int32).ravel())
        mesh.polygons.add(len(faces))
        mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
    mesh.update()
    if len(faces):
        mesh.shade_smooth()
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    write_pc2(cache, frames_points)
    modifier = obj.modifiers.new("truth", "MESH_CACHE")
    modifier.cache_format = "PC2"
    modifier.filepath = str(cache)
    modifier.interpolation = "NONE"
    modifier.frame_start = 0.0
    return obj


def _material(name: str, rgb: tuple[float, float, float]) -> bpy.types.Material:
    material = bpy.data.materials.new(name)
    material.diffuse_color = (*rgb, 1.0)  # what Workbench shows
    material.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = (*rgb, 1.0)
    material.node_tree.nodes["Principled BSDF"].inputs["Roughness"].default_value = 0.7
    return material


def _camera(job: RenderJob) -> bpy.types.Object:
    data = bpy.data.cameras.new("camera")
    data.sensor_fit = "HORIZONTAL"
    data.sensor_width = 36.0
    data.lens = float(job.K[0, 0]) * 36.0 / job.width
    data.shift_x = (job.width / 2 - float(job.K[0, 2])) / job.width
    data.shift_y = (float(job.K[1, 2]) - job.height / 2) / job.width
    data.clip_start, data.clip_end = 0.1, 100.0
    obj = bpy.data.objects.new("camera", data)
    bpy.context.scene.collection.objects.link(obj)
    rotation, translation = job.world_to_camera[:3, :3], job.world_to_camera[:3, 3]
    matrix = np.eye(4)
    # Blender's camera looks down its -Z with +Y up; OpenCV's looks down +z with y down.
    matrix[:3, :3] = Y_UP_TO_Z_UP @ rotation.T @ np.diag([1.0, -1.0, -1.0])
    matrix[:3, 3] = to_z_up(-rotation.T @ translation)
    obj.matrix_world = matrix.T.tolist()  # Blender matrices are row-major sequences of rows
    bpy.context.scene.camera = obj
    return obj


def build_scene(job: RenderJob, cache_dir: Path) -> dict[str, bpy.types.Object]:
    """A fresh scene with the body, floor, light, camera and the hidden vertebra markers."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    frames = job.vertices_m.shape[0]
    scene.frame_start, scene.frame_end = 0, frames - 1
    scene.render.fps, scene.render.fps_base = job.fps, 1.0
    scene.render.resolution_x, scene.render.resolution_y = job.width, job.height
    scene.render.resolution_percentage = 100
    scene.view_settings.view_transform = "Standard"  # plain sRGB: the skin colour as given
    rng = np.random.default_rng([job.seed, 5])
    body = _cached_mesh("body", to_z_up(job.vertices_m), job.faces, cache_dir / "body.pc2")
    body.data.materials.append(_material("skin", SKIN_RGB[int(rng.integers(len(SKIN_RGB)))]))
    if job.clothes:
        for name, colour in zip(
            ("shorts", "top"), rng.choice(len(GARMENT_RGB), 2, replace=False), strict=True
        ):
            body.data.materials.append(_material(name, GARMENT_RGB[int(colour)]))
        body.data.polygons.foreach_set("material_index", job.face_regions.astype(np.int32))
    markers = _cached_mesh(
        "vertebra_frames",
        to_z_up(frame_markers(job.vertebrae_m, job.vertebra_rotations)),
        np.zeros((0, 3), np.int64),
        cache_dir / "vertebrae.pc2",
    )
    markers.hide_render = True
    bpy.ops.mesh.primitive_plane_add(size=60.0, location=(0.0, 0.0, 0.0))
    floor = bpy.context.active_object
    floor.name = "floor"
    floor.data.materials.append(_material("floor", FLOOR_RGB))
    light_data = bpy.data.lights.new("key", "SUN")
    light_data.energy = 3.0
    light_data.angle = np.radians(20.0)  # a wide sun: soft shadows
    light = bpy.data.objects.new("key", light_data)
    light.rotation_euler = (np.radians(40.0), 0.0, np.radians(30.0))
    scene.collection.objects.link(light)
    world = bpy.data.worlds.new("world")
    world.color = (0.7, 0.72, 0.75)
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.7, 0.72, 0.75, 1.0)
    world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.8
    scene.world = world
    _camera(job)
    return {"body": body, "markers": markers, "floor": floor}


def _set_engine(scene: bpy.types.Scene, engine: str, seed: int) -> None:
    if engine == "cycles":
        scene.render.engine = "CYCLES"
        scene.cycles.device = "CPU"
        scene.cycles.samples = 16
        scene.cycles.use_denoising = True
        scene.cycles.seed = seed
    else:
        scene.render.engine = "BLENDER_WORKBENCH"
        scene.display.shading.light = "STUDIO"
        scene.display.shading.color_type = "MATERIAL"
        scene.display.shading.show_shadows = True
        scene.display.shadow_focus = 0.6  # soft edges
        scene.display.render_aa = "FXAA"  # 8x multisampling costs 3x the time for little here


@contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Silence Blender's per-frame lines (written by C code to file descriptor 1): the progress bar speaks."""
    sys.stdout.flush()
    saved, devnull = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def _render_animation(scene: bpy.types.Scene, progress: Progress) -> None:
    """Render the frame range to ``scene.render.filepath``, reporting each frame."""
    frames = scene.frame_end - scene.frame_start + 1

    def report(scene_: bpy.types.Scene, *_: object) -> None:
        progress((scene_.frame_current - scene_.frame_start + 1) / frames, f"frame {scene_.frame_current}")

    bpy.app.handlers.render_post.append(report)
    try:
        with _quiet_stdout():
            bpy.ops.render.render(animation=True)
    finally:
        bpy.app.handlers.render_post.remove(report)


def render_video(
    job: RenderJob, objects: dict[str, bpy.types.Object], out_dir: Path, progress: Progress
) -> Path:
    """Render the clip as H.264 MP4 into ``out_dir``; returns the file Blender wrote."""
    scene = bpy.context.scene
    _set_engine(scene, job.engine, job.seed)
    objects["floor"].hide_render = False
    scene.render.film_transparent = False
    settings = scene.render.image_settings
    settings.media_type = "VIDEO"  # Blender 5.0: before file_format
    settings.file_format = "FFMPEG"
    scene.render.ffmpeg.format = "MPEG4"
    scene.render.ffmpeg.codec = "H264"
    scene.render.ffmpeg.constant_rate_factor = "HIGH"
    scene.render.ffmpeg.gopsize = job.fps
    scene.render.filepath = str(out_dir / "clip_")
    _render_animation(scene, progress)
    written = sorted(out_dir.glob("clip_*.mp4"))
    if len(written) != 1:
        raise RuntimeError(f"Blender wrote {len(written)} videos in {out_dir}")
    return written[0]


def render_masks(objects: dict[str, bpy.types.Object], out_dir: Path, progress: Progress) -> np.ndarray:
    """(T, H, W) bool person masks: the body alone, flat, on a transparent film."""
    import cv2

    scene = bpy.context.scene
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.display.shading.light = "FLAT"
    scene.display.shading.color_type = "SINGLE"
    scene.display.shading.show_shadows = False
    scene.display.render_aa = "OFF"
    scene.render.film_transparent = True
    objects["floor"].hide_render = True
    settings = scene.render.image_settings
    settings.media_type = "IMAGE"
    settings.file_format = "PNG"
    settings.color_mode = "RGBA"
    scene.render.filepath = str(out_dir / "mask_")
    _render_animation(scene, progress)
    files = sorted(out_dir.glob("mask_*.png"))
    return np.stack([cv2.imread(str(f), cv2.IMREAD_UNCHANGED)[..., 3] > 127 for f in files])


@dataclass(frozen=True)
class Rendered:
    """masks: (T, H, W) bool person masks; scene_vertebra_points: (T, 4L, 3) the vertebra frame
    markers as Blender evaluated them (lab frame), for :func:`markers_to_frames`."""

    masks: np.ndarray
    scene_vertebra_points: np.ndarray


def render_clip(job: RenderJob, video_path: Path, progress: Progress) -> Rendered:
    """Build the scene, render ``video_path`` (MP4) and the masks, and read the vertebrae back."""
    with tempfile.TemporaryDirectory(prefix="hmn_synth_") as tmp:
        work = Path(tmp)
        objects = build_scene(job, work)
        with progress.stage(0.0, 0.75, "render") as stage:
            written = render_video(job, objects, work, stage)
        with progress.stage(0.75, 1.0, "masks") as stage:
            masks = render_masks(objects, work, stage)
        written.replace(video_path)
        points = evaluated_points(objects["markers"], range(job.vertices_m.shape[0]))
    return Rendered(masks, points)


def evaluated_points(obj: bpy.types.Object, frames: range) -> np.ndarray:
    """(len(frames), N, 3) evaluated vertex positions of ``obj`` in the lab frame (y up)."""
    scene = bpy.context.scene
    out = []
    for frame in frames:
        scene.frame_set(frame)
        evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
        points = np.empty(len(evaluated.data.vertices) * 3, dtype=np.float32)
        evaluated.data.vertices.foreach_get("co", points)
        out.append(points.reshape(-1, 3) @ Y_UP_TO_Z_UP)  # inverse of to_z_up (orthogonal)
    return np.stack(out)
