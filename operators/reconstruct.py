"""Reconstruct from Video, Cancel, Load Reconstruction, Export, Open Report Folder.

Thin: the work is in ``hmn_blender_addon.blender.session`` / ``.export``; these classes read the
scene's settings (``scene.hmn``), call it, and report in the status bar.
"""

import json
import traceback
from pathlib import Path

import bpy

from ..hmn_blender_addon.blender.build import REPORT_PROPERTY
from ..hmn_blender_addon.blender.export import EXTENSIONS, export_subject
from ..hmn_blender_addon.blender.session import ReconstructionRun, default_output_dir, load_into_scene
from ..hmn_blender_addon.errors import Cancelled, HMNError
from ..panels.preferences import apply_preferences

VIDEO_GLOB = "*.mp4;*.mov;*.avi;*.mkv;*.webm;*.m4v"
# The run in progress (one at a time), so that the panel's Cancel button can reach it.
ACTIVE_RUNS: list = []


def show_subject(context, armature, report: dict, folder: Path) -> None:
    """Point the panel at a built subject: its metrics, report folder and armature."""
    settings = context.scene.hmn
    settings.report_json = json.dumps(report)
    settings.report_dir = str(folder)
    settings.subject = armature


def _unexpected(operator, error: BaseException) -> set:
    traceback.print_exception(error)
    operator.report({"ERROR"}, f"HumanMoveNet: internal error: {error!r} (details in the system console)")
    return {"CANCELLED"}


class HMN_OT_reconstruct(bpy.types.Operator):
    """Reconstruct the body, spine and metrics from a gait video (runs in the background; Esc cancels)"""

    bl_idname = "hmn.reconstruct"
    bl_label = "Reconstruct from Video"
    bl_options = {"REGISTER", "UNDO"}

    filepath: bpy.props.StringProperty(name="Video", subtype="FILE_PATH", options={"SKIP_SAVE"})
    filter_glob: bpy.props.StringProperty(default=VIDEO_GLOB, options={"HIDDEN"})

    @classmethod
    def poll(cls, context):
        return not ACTIVE_RUNS and (context.mode == "OBJECT")

    def invoke(self, context, event):
        self.filepath = self.filepath or bpy.path.abspath(context.scene.hmn.video_path)
        if not self.filepath:
            context.window_manager.fileselect_add(self)
            return {"RUNNING_MODAL"}
        return self.execute(context)

    def execute(self, context):
        from ..hmn_blender_addon.pipeline import RunSettings

        apply_preferences(context)
        settings = context.scene.hmn
        settings.video_path = self.filepath
        out_dir = (
            bpy.path.abspath(settings.output_dir)
            if settings.output_dir
            else default_output_dir(self.filepath)
        )
        run_settings = RunSettings(
            body=settings.body, smoother=settings.smoother, subject_height_m=settings.subject_height_m or None
        )
        try:
            self._run = ReconstructionRun(context.window_manager, self.filepath, out_dir, run_settings)
        except HMNError as err:
            self.report({"ERROR"}, f"HumanMoveNet: {err}")
            return {"CANCELLED"}
        ACTIVE_RUNS.append(self._run)
        settings.progress, settings.status = 0.0, "starting"
        self._timer = context.window_manager.event_timer_add(0.1, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type == "ESC":
            self._run.cancel()
            return {"RUNNING_MODAL"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        settings = context.scene.hmn
        done = self._run.tick()
        settings.progress, settings.status = self._run.fraction, self._run.bar.message
        for area in context.screen.areas if context.screen else ():
            area.tag_redraw()
        if not done:
            return {"RUNNING_MODAL"}
        context.window_manager.event_timer_remove(self._timer)
        ACTIVE_RUNS.remove(self._run)
        try:
            armature, report = self._run.finish(context.scene)
        except Cancelled:
            settings.status = "cancelled"
            self.report({"WARNING"}, "HumanMoveNet: cancelled; the scene and the output folder are unchanged")
            return {"CANCELLED"}
        except HMNError as err:
            settings.status = str(err)
            self.report({"ERROR"}, f"HumanMoveNet: {err}")
            return {"CANCELLED"}
        except Exception as err:  # a bug: keep Blender alive and say where to look
            settings.status = "internal error"
            return _unexpected(self, err)
        show_subject(context, armature, report, self._run.job.out_dir)
        settings.status = "done"
        self.report(
            {"INFO"}, f"HumanMoveNet: reconstructed {Path(self.filepath).name} into {self._run.job.out_dir}"
        )
        return {"FINISHED"}

    def cancel(self, context):
        # Blender ends the operator itself (e.g. another file is opened): stop the run, build nothing.
        self._run.cancel()
        self._run.bar.end()
        context.window_manager.event_timer_remove(self._timer)
        ACTIVE_RUNS.remove(self._run)


class HMN_OT_cancel_run(bpy.types.Operator):
    """Cancel the reconstruction in progress (the scene and the output folder stay as they were)"""

    bl_idname = "hmn.cancel_run"
    bl_label = "Cancel"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context):
        return bool(ACTIVE_RUNS)

    def execute(self, context):
        for run in ACTIVE_RUNS:
            run.cancel()
        context.scene.hmn.status = "cancelling"
        return {"FINISHED"}


class HMN_OT_load_reconstruction(bpy.types.Operator):
    """Rebuild the subject from a run's reconstruction.npz (and its report.json) without the video"""

    bl_idname = "hmn.load_reconstruction"
    bl_label = "Load Reconstruction"
    bl_options = {"REGISTER", "UNDO"}

    filepath: bpy.props.StringProperty(name="Reconstruction", subtype="FILE_PATH")
    filter_glob: bpy.props.StringProperty(default="*.npz", options={"HIDDEN"})

    @classmethod
    def poll(cls, context):
        return context.mode == "OBJECT"

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        apply_preferences(context)
        try:
            armature, report = load_into_scene(context.scene, self.filepath)
        except HMNError as err:
            self.report({"ERROR"}, f"HumanMoveNet: {err}")
            return {"CANCELLED"}
        show_subject(context, armature, report, Path(self.filepath).resolve().parent)
        self.report(
            {"INFO"}, f"HumanMoveNet: loaded {self.filepath} ({len(context.scene.timeline_markers)} markers)"
        )
        return {"FINISHED"}


def _subject(context):
    active = context.active_object
    if active is not None and REPORT_PROPERTY in active:
        return active
    return context.scene.hmn.subject


class HMN_OT_export(bpy.types.Operator):
    """Export the subject: FBX, BVH, Alembic, OpenSim .mot angles, AMASS-style .npz, or the report"""

    bl_idname = "hmn.export"
    bl_label = "Export"
    bl_options = {"REGISTER"}

    format: bpy.props.EnumProperty(
        name="Format",
        items=(
            ("FBX", "FBX", "Armature and skinned mesh with the animation"),
            ("BVH", "BVH", "The armature's motion"),
            ("ABC", "Alembic", "The animated mesh"),
            ("MOT", "OpenSim .mot", "Pelvis and lumbar angles (degrees)"),
            ("AMASS", "AMASS .npz", "SMPL poses, translation and shape"),
            ("REPORT", "Report CSV + JSON", "The metrics report"),
        ),
    )
    filepath: bpy.props.StringProperty(name="File", subtype="FILE_PATH", options={"SKIP_SAVE"})

    @classmethod
    def poll(cls, context):
        return context.mode == "OBJECT" and _subject(context) is not None

    def invoke(self, context, event):
        if not self.filepath:
            folder = Path(bpy.path.abspath(context.scene.hmn.report_dir) or ".")
            self.filepath = str(folder / f"subject{EXTENSIONS[self.format] or '_report'}")
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        apply_preferences(context)
        try:
            written = export_subject(self.format, _subject(context), bpy.path.abspath(self.filepath))
        except HMNError as err:
            self.report({"ERROR"}, f"HumanMoveNet: {err}")
            return {"CANCELLED"}
        self.report({"INFO"}, "HumanMoveNet: wrote " + ", ".join(str(path) for path in written))
        return {"FINISHED"}


class HMN_OT_open_report_folder(bpy.types.Operator):
    """Open the folder holding the shown subject's report"""

    bl_idname = "hmn.open_report_folder"
    bl_label = "Open Report Folder"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context):
        return bool(context.scene.hmn.report_dir)

    def execute(self, context):
        folder = bpy.path.abspath(context.scene.hmn.report_dir)
        bpy.ops.wm.path_open(filepath=folder)
        self.report({"INFO"}, f"HumanMoveNet report: {folder}")
        return {"FINISHED"}


CLASSES = (
    HMN_OT_reconstruct,
    HMN_OT_cancel_run,
    HMN_OT_load_reconstruction,
    HMN_OT_export,
    HMN_OT_open_report_folder,
)
