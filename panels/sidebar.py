"""The sidebar tab: View3D > Sidebar (N) > "HumanMoveNet"."""

import bpy

from ..hmn_blender_addon import __version__
from .preferences import ADDON_PACKAGE


class VIEW3D_PT_humanmovenet(bpy.types.Panel):
    bl_idname = "VIEW3D_PT_humanmovenet"
    bl_label = f"HumanMoveNet {__version__}"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "HumanMoveNet"

    def draw(self, context):
        layout = self.layout
        addon = context.preferences.addons.get(ADDON_PACKAGE)
        smpl_dir = addon.preferences.smpl_model_dir if addon is not None else ""
        layout.label(text=f"Body model: {'SMPL (' + smpl_dir + ')' if smpl_dir else 'open body'}")
        column = layout.column(align=True)
        column.operator("hmn.check_environment", icon="CHECKMARK")
        column.operator("hmn.open_cache_folder", icon="FILE_FOLDER")
