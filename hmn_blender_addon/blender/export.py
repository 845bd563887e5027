"""Exports of a built subject through Blender's own exporters (FBX, BVH, Alembic), plus the
bpy-free ones of :mod:`...export` (.mot, AMASS .npz, report CSV/JSON) from the same scene.

A subject is the armature :func:`.build.build_scene` made; the reconstruction it came from is
reread from the path it carries, so every export describes the same motion.
"""

from __future__ import annotations

import os
from pathlib import Path

import bpy

from ..atomic import atomic_path
from ..body.model import load_body_model
from ..errors import HMNError
from ..export import write_amass_npz, write_angles_mot, write_report_files
from ..reconstruction import load_reconstruction
from .build import RECONSTRUCTION_PROPERTY, load_report

FORMATS = ("FBX", "BVH", "ABC", "MOT", "AMASS", "REPORT")
EXTENSIONS = {"FBX": ".fbx", "BVH": ".bvh", "ABC": ".abc", "MOT": ".mot", "AMASS": ".npz", "REPORT": ""}


def _blender_export(kind: str, armature: bpy.types.Object, path: Path) -> None:
    scene = armature.users_scene[0]
    mesh_objects = [child for child in armature.children if child.type == "MESH"]
    view_layer = scene.view_layers[0]
    with bpy.context.temp_override(
        scene=scene,
        view_layer=view_layer,
        active_object=armature,
        object=armature,
        selected_objects=[armature, *mesh_objects],
    ):
        for obj in view_layer.objects:
            obj.select_set(obj == armature or obj in mesh_objects)
        view_layer.objects.active = armature
        if kind == "FBX":
            result = bpy.ops.export_scene.fbx(
                filepath=str(path),
                use_selection=True,
                object_types={"ARMATURE", "MESH"},
                add_leaf_bones=False,
                bake_anim=True,
                bake_anim_use_all_actions=False,
                bake_anim_use_nla_strips=False,
            )
        elif kind == "BVH":
            result = bpy.ops.export_anim.bvh(
                filepath=str(path),
                frame_start=scene.frame_start,
                frame_end=scene.frame_end,
                rotate_mode="NATIVE",
            )
        else:
            result = bpy.ops.wm.alembic_export(
                filepath=str(path), selected=True, start=scene.frame_start, end=scene.frame_end
            )
    if "FINISHED" not in result:
        raise HMNError(path, f"Blender's {kind} exporter failed")


def export_subject(kind: str, armature: bpy.types.Object, path: str | os.PathLike) -> list[Path]:
    """Write ``armature``'s subject as ``kind`` (one of :data:`FORMATS`) to ``path``; the files written.

    REPORT writes ``<path>.json`` and ``<path>.csv``; the others write ``path`` itself (atomically).
    """
    path = Path(path)
    if kind not in FORMATS:
        raise HMNError(kind, f"unknown export format: choose one of {', '.join(FORMATS)}")
    if kind == "REPORT":
        return list(write_report_files(load_report(armature), path.with_suffix("")))
    if kind in ("FBX", "BVH", "ABC"):
        with atomic_path(path) as tmp:
            _blender_export(kind, armature, tmp)
        return [path]
    source = armature.get(RECONSTRUCTION_PROPERTY)
    if not source:
        raise HMNError(armature.name, "does not name the reconstruction.npz it was built from")
    reconstruction = load_reconstruction(bpy.path.abspath(source))
    if kind == "MOT":
        return [write_angles_mot(reconstruction, path)]
    return [write_amass_npz(reconstruction, load_body_model(reconstruction.body_model), path)]
