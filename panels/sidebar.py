"""The sidebar tab: View3D > Sidebar (N) > "HumanMoveNet"."""

import json

import bpy

from ..hmn_blender_addon import __version__
from ..hmn_blender_addon.normative import report_rows
from .preferences import ADDON_PACKAGE

FLAG_ICONS = {"within": "CHECKMARK", "below": "ERROR", "above": "ERROR", "no band": "BLANK1"}
FLAG_NOTES = {"within": "", "below": " (below band)", "above": " (above band)", "no band": ""}


class VIEW3D_PT_humanmovenet(bpy.types.Panel):
    bl_idname = "VIEW3D_PT_humanmovenet"
    bl_label = f"HumanMoveNet {__version__}"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "HumanMoveNet"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.hmn
        column = layout.column()
        column.prop(settings, "video_path")
        column.prop(settings, "output_dir")
        column.prop(settings, "body")
        addon = context.preferences.addons.get(ADDON_PACKAGE)
        if settings.body == "smpl" and not (addon and addon.preferences.smpl_model_dir):
            column.label(text="Set the SMPL folder in the add-on preferences", icon="ERROR")
        column.prop(settings, "smoother")
        column.prop(settings, "subject_height_m")
        row = layout.row(align=True)
        # A run is in progress exactly when Cancel can run (the state is not saved with the file).
        if bpy.ops.hmn.cancel_run.poll():
            row.progress(factor=settings.progress, text=settings.status)
            row.operator("hmn.cancel_run", icon="CANCEL")
        else:
            row.operator("hmn.reconstruct", text="Run", icon="PLAY")
            row.operator("hmn.load_reconstruction", text="Load", icon="FILE_FOLDER")
            if settings.status:
                layout.label(text=f"Last run: {settings.status}")
        if settings.report_json:
            box = layout.box()
            box.label(text="Metrics (band: REFERENCES.md 1)")
            for metric in report_rows(json.loads(settings.report_json)):
                split = box.split(factor=0.55)
                split.label(text=metric.label)
                split.label(text=metric.text + FLAG_NOTES[metric.flag], icon=FLAG_ICONS[metric.flag])
            row = box.row(align=True)
            row.operator("hmn.open_report_folder", icon="FILE_FOLDER")
            row.operator_menu_enum("hmn.export", "format", text="Export", icon="EXPORT")
        column = layout.column(align=True)
        column.operator("hmn.check_environment", icon="CHECKMARK")
        column.operator("hmn.open_cache_folder", icon="FILE_FOLDER")
