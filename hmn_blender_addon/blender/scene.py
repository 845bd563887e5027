"""Build one subject in Blender: armature (SMPL joints + vertebra chain), skinned mesh, keyframes.

This is the one place where the lab frame (y up) becomes Blender's Z-up: a point (x, y, z)
becomes (x, -z, y) (:data:`Y_UP_TO_Z_UP`). Keyframes are written with ``fcurves`` +
``keyframe_points.foreach_set`` on Blender 4.4+'s slotted actions (5.0 removed
``Action.fcurves``), never ``keyframe_insert`` per frame. Blender frame = frame index + 1.
"""

from __future__ import annotations

import bpy
import numpy as np
from bpy_extras import anim_utils
from scipy.spatial.transform import Rotation

from ..rig import Rig, RigMotion
from ..subject import Y_UP_TO_Z_UP

MIN_BONE_LENGTH_M = 0.02
FIRST_FRAME = 1
# Per-frame keys: linear interpolation between them (Bezier handles would overshoot).
_LINEAR = bpy.types.Keyframe.bl_rna.properties["interpolation"].enum_items["LINEAR"].value


def to_z_up(points: np.ndarray) -> np.ndarray:
    """(..., 3) lab-frame points -> Blender world coordinates."""
    return points @ Y_UP_TO_Z_UP.T


def bone_tails(rig: Rig) -> np.ndarray:
    """(B, 3) rest tails (lab frame): toward the most vertical child, or along the parent's direction."""
    heads = rig.rest_heads_m.astype(np.float64)
    tails = np.empty_like(heads)
    for bone, head in enumerate(heads):
        children = np.nonzero(rig.parents == bone)[0]
        if len(children):
            offsets = heads[children] - head
            verticality = np.abs(offsets[:, 1]) / np.maximum(np.linalg.norm(offsets, axis=1), 1e-9)
            direction = offsets[int(np.argmax(verticality))]
        elif rig.parents[bone] >= 0:
            direction = head - heads[rig.parents[bone]]
        else:
            direction = np.array([0.0, 1.0, 0.0])
        length = np.linalg.norm(direction)
        unit = direction / length if length > 1e-9 else np.array([0.0, 1.0, 0.0])
        tails[bone] = head + unit * max(length if len(children) else 0.5 * length, MIN_BONE_LENGTH_M)
    return tails


def _link(obj: bpy.types.Object, collection: bpy.types.Collection) -> bpy.types.Object:
    collection.objects.link(obj)
    return obj


def build_armature(
    rig: Rig, name: str, collection: bpy.types.Collection, scene: bpy.types.Scene | None = None
) -> bpy.types.Object:
    """An armature object with one bone per rig bone, heads at the rest joints.

    ``collection`` must belong to ``scene`` (default: the context's); the scene need not be the
    window's, so a scene can be built off-screen (e.g. to write a .blend).
    """
    armature = bpy.data.armatures.new(name)
    obj = _link(bpy.data.objects.new(name, armature), collection)
    heads = to_z_up(rig.rest_heads_m)
    tails = to_z_up(bone_tails(rig))
    scene = scene or bpy.context.scene
    view_layer = scene.view_layers[0]
    previous_active = view_layer.objects.active
    with bpy.context.temp_override(scene=scene, view_layer=view_layer, active_object=obj, object=obj):
        view_layer.objects.active = obj
        bpy.ops.object.mode_set(mode="EDIT")
        edit_bones = []
        for index, bone_name in enumerate(rig.bone_names):
            bone = armature.edit_bones.new(bone_name)
            bone.head, bone.tail = heads[index], tails[index]
            if rig.parents[index] >= 0:
                bone.parent = edit_bones[rig.parents[index]]
            edit_bones.append(bone)
        bpy.ops.object.mode_set(mode="OBJECT")
    view_layer.objects.active = previous_active
    for pose_bone in obj.pose.bones:
        pose_bone.rotation_mode = "QUATERNION"
    return obj


def build_mesh(rig: Rig, name: str, armature_obj: bpy.types.Object) -> bpy.types.Object:
    """The rest mesh, skinned to ``armature_obj`` through vertex groups and an Armature modifier."""
    mesh = bpy.data.meshes.new(name)
    vertices = to_z_up(rig.rest_vertices_m).astype(np.float32)
    faces = np.asarray(rig.faces, dtype=np.int32)
    mesh.vertices.add(len(vertices))
    mesh.vertices.foreach_set("co", vertices.ravel())
    mesh.loops.add(faces.size)
    mesh.loops.foreach_set("vertex_index", faces.ravel())
    mesh.polygons.add(len(faces))
    mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
    mesh.polygons.foreach_set("loop_total", np.full(len(faces), 3, dtype=np.int32))
    mesh.update()
    mesh.validate()
    obj = bpy.data.objects.new(name, mesh)
    for collection in armature_obj.users_collection:
        collection.objects.link(obj)
    obj.parent = armature_obj
    for bone_index, bone_name in enumerate(rig.bone_names):
        group = obj.vertex_groups.new(name=bone_name)
        weights = rig.skin_weights[:, bone_index]
        for vertex in np.nonzero(weights > 1e-6)[0]:
            group.add([int(vertex)], float(weights[vertex]), "REPLACE")
    modifier = obj.modifiers.new("Armature", "ARMATURE")
    modifier.object = armature_obj
    return obj


def pose_quaternions(rig: Rig, motion: RigMotion, armature_obj: bpy.types.Object) -> np.ndarray:
    """(T, B, 4) w-first pose-bone quaternions: each bone's local rotation in its rest axes."""
    rest_axes = np.array(
        [np.array(armature_obj.data.bones[name].matrix_local.to_3x3()) for name in rig.bone_names]
    )  # (B, 3, 3) bone axes in armature (Z-up) space
    local_z_up = Y_UP_TO_Z_UP @ motion.local_rotations @ Y_UP_TO_Z_UP.T  # (T, B, 3, 3)
    in_bone_axes = np.swapaxes(rest_axes, -1, -2) @ local_z_up @ rest_axes
    xyzw = Rotation.from_matrix(in_bone_axes.reshape(-1, 3, 3)).as_quat()
    wxyz = np.roll(xyzw, 1, axis=-1).reshape(*in_bone_axes.shape[:2], 4)
    # Keep consecutive quaternions in one hemisphere so interpolation takes the short way.
    flips = np.cumprod(np.where(np.sum(wxyz[1:] * wxyz[:-1], axis=-1) < 0, -1.0, 1.0), axis=0)
    wxyz[1:] *= flips[..., None]
    return wxyz


def _channelbag(obj: bpy.types.ID, name: str):
    obj.animation_data_create()
    action = bpy.data.actions.new(name)
    slot = action.slots.new(id_type="OBJECT", name=obj.name)
    obj.animation_data.action = action
    obj.animation_data.action_slot = slot
    return anim_utils.action_ensure_channelbag_for_slot(action, slot)


def _set_curve(channelbag, data_path: str, index: int, values: np.ndarray, group: str) -> None:
    count = len(values)
    curve = channelbag.fcurves.new(data_path, index=index, group_name=group)
    curve.keyframe_points.add(count)
    coordinates = np.empty(2 * count, dtype=np.float32)
    coordinates[0::2] = np.arange(FIRST_FRAME, FIRST_FRAME + count)
    coordinates[1::2] = values
    curve.keyframe_points.foreach_set("co", coordinates)
    curve.keyframe_points.foreach_set("interpolation", np.full(count, _LINEAR, dtype=np.int32))
    curve.update()


def keyframe_motion(rig: Rig, motion: RigMotion, armature_obj: bpy.types.Object) -> None:
    """Keyframe every bone on every frame (quaternions; the root also its location) and the curves."""
    quaternions = pose_quaternions(rig, motion, armature_obj)
    channelbag = _channelbag(armature_obj, f"{armature_obj.name} motion")
    for bone_index, bone_name in enumerate(rig.bone_names):
        path = f'pose.bones["{bone_name}"].rotation_quaternion'
        for component in range(4):
            _set_curve(channelbag, path, component, quaternions[:, bone_index, component], bone_name)
    root_name = rig.bone_names[0]
    root_axes = np.array(armature_obj.data.bones[root_name].matrix_local.to_3x3())
    root_rest_head = to_z_up(rig.rest_heads_m[0])
    # Pose-bone location is in the bone's rest axes, relative to its rest head.
    root_location = (to_z_up(motion.root_position_m) - root_rest_head) @ root_axes
    for component in range(3):
        _set_curve(
            channelbag,
            f'pose.bones["{root_name}"].location',
            component,
            root_location[:, component],
            root_name,
        )
    for curve_name, values in motion.curves_deg.items():
        armature_obj[curve_name] = float(values[0])
        _set_curve(channelbag, f'["{curve_name}"]', 0, np.asarray(values, dtype=np.float64), "metrics")


def build_subject(
    rig: Rig, motion: RigMotion, name: str, scene: bpy.types.Scene | None = None
) -> tuple[bpy.types.Object, bpy.types.Object]:
    """One collection ``name`` holding the keyframed armature and its skinned mesh.

    Also sets the scene's frame rate and range to the motion's, and adds the motion's markers.
    Returns (armature object, mesh object).
    """
    scene = scene or bpy.context.scene
    collection = bpy.data.collections.new(name)
    scene.collection.children.link(collection)
    armature_obj = build_armature(rig, f"{name} rig", collection, scene)
    mesh_obj = build_mesh(rig, f"{name} body", armature_obj)
    keyframe_motion(rig, motion, armature_obj)
    num_frames = motion.local_rotations.shape[0]
    scene.render.fps, scene.render.fps_base = _fps_fraction(motion.fps)
    scene.frame_start, scene.frame_end = FIRST_FRAME, FIRST_FRAME + num_frames - 1
    for marker_name, frames in motion.markers.items():
        for frame in frames:
            scene.timeline_markers.new(marker_name, frame=FIRST_FRAME + int(frame))
    return armature_obj, mesh_obj


def _fps_fraction(fps: float) -> tuple[int, float]:
    """Blender's integer fps and fps_base for a possibly fractional rate (29.97 -> 30, 1.001)."""
    rounded = max(round(fps), 1)
    return rounded, rounded / fps
