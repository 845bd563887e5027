"""Run by tests/test_blender_ui_addon.py in a fresh Python with only bpy and numpy on sys.path.

Installs the built zip as a user would and drives the add-on's operators and panel: Load
Reconstruction, the panel's drawing, every export, save and reopen, and Reconstruct from Video
cancelled at several points. Writes what it saw to OUT/seen.json and OUT/arrays.npz.
argv: ZIP SANDBOX_DIR RUN_DIR VIDEO OUT
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, sys.argv[2])

import bpy
import numpy as np

zip_path, run_dir, video, out = sys.argv[1], Path(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5])
package = "bl_ext.user_default.humanmovenet"
seen, arrays = {}, {}
bpy.ops.wm.read_factory_settings(use_empty=True)
seen["install"] = sorted(
    bpy.ops.extensions.package_install_files(
        filepath=zip_path, repo="user_default", enable_on_install=True, overwrite=True
    )
)
addon = sys.modules[package]
session = sys.modules[f"{package}.hmn_blender_addon.blender.session"]
skeleton = sys.modules[f"{package}.hmn_blender_addon.skeleton"]
pipeline = __import__(f"{package}.hmn_blender_addon.pipeline", fromlist=["RunSettings"])


def scene_state() -> dict:
    """What a cancelled run must not change: every data-block, the frame range, the markers."""
    scene = bpy.context.scene
    return {
        "ids": sorted(
            f"{kind}:{block.name}"
            for kind in ("objects", "collections", "actions", "meshes")
            for block in getattr(bpy.data, kind)
        ),
        "frames": [scene.frame_start, scene.frame_end],
        "markers": sorted((m.name, m.frame) for m in scene.timeline_markers),
        "report": scene.hmn.report_json,
    }


def folder_state(folder: Path) -> list:
    return sorted(
        (str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")
    )


def evaluated(armature, mesh, frame: int, names) -> tuple:
    bpy.context.scene.frame_set(frame)
    world = np.array(armature.matrix_world)
    heads = np.array([world[:3, :3] @ np.array(armature.pose.bones[n].head) + world[:3, 3] for n in names])
    depsgraph = bpy.context.evaluated_depsgraph_get()
    data = mesh.evaluated_get(depsgraph).to_mesh()
    coordinates = np.empty(len(data.vertices) * 3)
    data.vertices.foreach_get("co", coordinates)
    mesh.evaluated_get(depsgraph).to_mesh_clear()
    return heads, coordinates.reshape(-1, 3)


# 0. A corrupt reconstruction file: a clear error naming it, and the scene stays empty.
corrupt = out / "corrupt.npz"
corrupt.write_bytes(b"not an npz")
try:
    bpy.ops.hmn.load_reconstruction(filepath=str(corrupt))
    seen["corrupt"] = "loaded"
except RuntimeError as exc:
    seen["corrupt"] = str(exc).strip()
seen["objects_after_corrupt"] = len(bpy.data.objects)

# 1. Load Reconstruction into an empty scene.
seen["load"] = sorted(bpy.ops.hmn.load_reconstruction(filepath=str(run_dir / "reconstruction.npz")))
scene = bpy.context.scene
armature = scene.hmn.subject
mesh = next(child for child in armature.children if child.type == "MESH")
camera = scene.camera
vertebrae = tuple(json.loads((out / "vertebra_names.json").read_text()))
names = (*skeleton.SMPL_JOINT_NAMES, *vertebrae)
bones = armature.data.bones
seen["parents"] = {name: (bones[name].parent.name if bones[name].parent else None) for name in names}
seen["frames"] = [scene.frame_start, scene.frame_end, scene.render.fps, scene.render.fps_base]
seen["markers"] = sorted((m.name, m.frame) for m in scene.timeline_markers)
anim_utils = __import__("bpy_extras.anim_utils", fromlist=["x"])
channelbag = anim_utils.action_get_channelbag_for_slot(
    armature.animation_data.action, armature.animation_data.action_slot
)
seen["fcurves"] = {f"{c.data_path}[{c.array_index}]": len(c.keyframe_points) for c in channelbag.fcurves}
count = scene.frame_end - scene.frame_start + 1
checked = [0, count // 2, count - 1]
for frame in checked:
    heads, vertices = evaluated(armature, mesh, scene.frame_start + frame, names)
    arrays[f"heads_{frame}"], arrays[f"vertices_{frame}"] = heads, vertices
    arrays[f"lumbar_flexion_{frame}"] = np.array(armature["lumbar_flexion_deg"])
arrays["faces"] = np.array([tuple(p.vertices) for p in mesh.data.polygons])
seen["checked"] = checked

# The camera sees the reconstruction's joints where the camera matrix K puts them.
object_utils = __import__("bpy_extras.object_utils", fromlist=["x"])
scene.frame_set(scene.frame_start)
uv = [object_utils.world_to_camera_view(scene, camera, armature.pose.bones[n].head) for n in names[:24]]
arrays["projected_px"] = np.array(
    [(p[0] * scene.render.resolution_x, (1 - p[1]) * scene.render.resolution_y) for p in uv]
)
background = camera.data.background_images[0] if camera.data.background_images else None
seen["background"] = background and [background.source, bpy.path.abspath(background.clip.filepath)]


# 2. The panel as drawn, through a layout that records its labels.
class Recorder:
    def __init__(self):
        self.texts, self.controls = [], []

    def label(self, text="", **_):
        self.texts.append(text)

    def prop(self, data, name, **_):
        self.controls.append(f"prop {name}")

    def operator(self, idname, **_):
        self.controls.append(f"operator {idname}")

    def operator_menu_enum(self, idname, name, **_):
        self.controls.append(f"menu {idname} {name}")

    def __getattr__(self, name):
        if name in ("column", "row", "box", "split"):
            return lambda *a, **k: self
        return lambda *a, **k: None


panel = type("PanelStub", (), {"layout": Recorder()})()
bpy.types.VIEW3D_PT_humanmovenet.draw(panel, bpy.context)
seen["panel_labels"], seen["panel_controls"] = panel.layout.texts, panel.layout.controls
normative = sys.modules[f"{package}.hmn_blender_addon.normative"]
seen["panel_rows"] = [
    [row.key, row.value, row.sd, row.flag, row.text]
    for row in normative.report_rows(json.loads(scene.hmn.report_json))
]

# 3. Every export.
exports = out / "exports"
seen["exports"] = {}
for kind, name in (
    ("FBX", "s.fbx"),
    ("BVH", "s.bvh"),
    ("ABC", "s.abc"),
    ("MOT", "s.mot"),
    ("AMASS", "s.npz"),
    ("REPORT", "s_report"),
):
    result = bpy.ops.hmn.export(format=kind, filepath=str(exports / name))
    seen["exports"][kind] = sorted(result)
seen["export_files"] = sorted(p.name for p in exports.iterdir())

# 4. Save, reopen: the animation is intact.
blend = out / "saved.blend"
bpy.ops.wm.save_as_mainfile(filepath=str(blend))
bpy.ops.wm.read_homefile(use_empty=True)
bpy.ops.wm.open_mainfile(filepath=str(blend))
scene = bpy.context.scene
armature = scene.hmn.subject
mesh = next(child for child in armature.children if child.type == "MESH")
middle = checked[1]
arrays["reopened_heads"], _ = evaluated(armature, mesh, scene.frame_start + middle, names)
arrays["reopened_lumbar_flexion"] = np.array(armature["lumbar_flexion_deg"])
seen["reopened_frames"] = [scene.frame_start, scene.frame_end]

# 5. The scene.blend that run writes (write_scene_blend) beside the npz, moved with it elsewhere:
# it opens with the subject, and exports find the reconstruction beside it.
build = sys.modules[f"{package}.hmn_blender_addon.blender.build"]
recon = sys.modules[f"{package}.hmn_blender_addon.reconstruction"].load_reconstruction(
    run_dir / "reconstruction.npz"
)
moved = out / "moved_run"
moved.mkdir()
build.write_scene_blend(recon, {}, moved / "scene.blend")
seen["objects_after_write"] = sorted(o.name for o in bpy.data.objects)
(moved / "reconstruction.npz").write_bytes((run_dir / "reconstruction.npz").read_bytes())
moved = moved.rename(out / "moved_again")
bpy.ops.wm.open_mainfile(filepath=str(moved / "scene.blend"))
seen["scene_blend_objects"] = sorted(o.name for o in bpy.context.scene.objects)
seen["scene_blend_export"] = sorted(bpy.ops.hmn.export(format="MOT", filepath=str(moved / "angles.mot")))
seen["keyframing_3000_s"] = build.time_keyframing(3000)

# 6. Cancelling Reconstruct from Video immediately (Esc), during keypoints (the panel's Cancel
# button), both into the folder of an earlier run, and after keypoints (Esc) into a folder that
# did not exist, through the operator's own modal(): the operator stand-in
# holds what execute() would have set up (a modal handler needs a real window event loop).
operators = sys.modules[f"{package}.operators.reconstruct"]
window_manager = bpy.context.window_manager


class Event:
    def __init__(self, kind):
        self.type = kind


class ReconstructOperator:
    def __init__(self, out_dir):
        self.filepath, self.reports = str(video), []
        self._run = session.ReconstructionRun(
            window_manager, video, out_dir, pipeline.RunSettings(smoother="butterworth")
        )
        operators.ACTIVE_RUNS.append(self._run)
        self._timer = window_manager.event_timer_add(0.1, window=bpy.context.window)

    def report(self, level, message):
        self.reports.append([sorted(level), message])


modal = bpy.types.HMN_OT_reconstruct.modal
seen["cancel"] = []
new_folder = out / "not_there_before"
for stop_at, how, out_dir in ((0.0, "ESC", run_dir), (0.05, "button", run_dir), (0.46, "ESC", new_folder)):
    before_scene, before_folder = scene_state(), folder_state(run_dir)
    operator, reached, result = ReconstructOperator(out_dir), 0.0, {"RUNNING_MODAL"}
    while result == {"RUNNING_MODAL"}:
        result = modal(operator, bpy.context, Event("TIMER"))
        reached = max(reached, operator._run.fraction)
        if reached >= stop_at and not operator._run.job.progress.cancelled:
            if how == "ESC":
                modal(operator, bpy.context, Event("ESC"))
            else:
                bpy.ops.hmn.cancel_run()
        operator._run.job.wait(0.05)
    seen["cancel"].append(
        {
            "stop_at": stop_at,
            "reached": reached,
            "result": sorted(result),
            "reports": operator.reports,
            "still_running": len(operators.ACTIVE_RUNS),
            "scene_same": scene_state() == before_scene,
            "folder_same": folder_state(run_dir) == before_folder and not new_folder.exists(),
        }
    )


# Blender itself ending the operator (another file opened) stops the run the same way.
before_scene, before_folder = scene_state(), folder_state(run_dir)
operator = ReconstructOperator(run_dir)
bpy.types.HMN_OT_reconstruct.cancel(operator, bpy.context)
seen["ended_by_blender"] = {
    "still_running": len(operators.ACTIVE_RUNS),
    "ended": operator._run.job.wait(120),
    "error": str(operator._run.job.error),
    "scene_same": scene_state() == before_scene,
    "folder_same": folder_state(run_dir) == before_folder,
}


# 7. A run that succeeds, through the same modal(), with a stand-in for pipeline.run (the real one
# takes minutes) that stages the known run's files as run does: the subject is built, the files
# and scene.blend land in a new output folder.
def stand_in_run(video_path, out_dir, settings, progress):
    with pipeline.staged_outputs(Path(out_dir)) as staging:
        for name in ("reconstruction.npz", "report.json"):
            (staging / name).write_bytes((run_dir / name).read_bytes())
        progress(1.0, f"done (scene.blend: {settings.write_blend})")
    return "stand-in result"


real_run, pipeline.run = pipeline.run, stand_in_run
fresh_out = out / "fresh"
operator, result = ReconstructOperator(fresh_out), {"RUNNING_MODAL"}
while result == {"RUNNING_MODAL"}:
    result = modal(operator, bpy.context, Event("TIMER"))
    operator._run.job.wait(0.05)
pipeline.run = real_run
seen["success"] = {
    "result": sorted(result),
    "reports": operator.reports,
    "files": sorted(p.name for p in fresh_out.iterdir()),
    "subject": getattr(bpy.context.scene.hmn.subject, "name", None),
    "report_dir": bpy.context.scene.hmn.report_dir,
    "status": bpy.context.scene.hmn.status,
}

# 8. The operator's execute() (file browser done): it reads the panel's settings and starts the
# modal run; the Cancel button stops it (in background Blender no timer event ever reaches modal()).
settings = bpy.context.scene.hmn
settings.output_dir, settings.smoother = str(out / "via_execute"), "butterworth"
result = bpy.ops.hmn.reconstruct(filepath=str(video))
(started,) = operators.ACTIVE_RUNS
seen["execute"] = {
    "result": sorted(result),
    "running": bpy.ops.hmn.cancel_run.poll(),
    "settings": [started.job.settings.smoother, started.job.settings.write_blend, str(started.job.out_dir)],
    "cancel": sorted(bpy.ops.hmn.cancel_run()),
    "ended": started.job.wait(120),
    "error": str(started.job.error),
    "folder_exists": (out / "via_execute").exists(),
}

np.savez(out / "arrays.npz", **arrays)
(out / "seen.json").write_text(json.dumps(seen, indent=1))
print("DONE")
