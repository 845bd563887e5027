"""Operators about the installation itself: check the bundled libraries, open the cache folder."""

import bpy

from ..hmn_blender_addon.info import installed_versions, missing_runtime_modules
from ..hmn_blender_addon.paths import cache_dir
from ..panels.preferences import apply_preferences


class HMN_OT_check_environment(bpy.types.Operator):
    """Check that the libraries the pipeline needs (bundled with the extension) can be found"""

    bl_idname = "hmn.check_environment"
    bl_label = "Check Environment"
    bl_options = {"REGISTER"}

    def execute(self, context):
        apply_preferences(context)
        missing = missing_runtime_modules()
        if missing:
            self.report({"ERROR"}, "HumanMoveNet: missing libraries: " + ", ".join(missing))
            return {"CANCELLED"}
        versions = ", ".join(f"{name} {version}" for name, version in installed_versions().items())
        self.report({"INFO"}, f"HumanMoveNet: all libraries found ({versions})")
        return {"FINISHED"}


class HMN_OT_open_cache_folder(bpy.types.Operator):
    """Open the folder where HumanMoveNet keeps its caches"""

    bl_idname = "hmn.open_cache_folder"
    bl_label = "Open Cache Folder"
    bl_options = {"REGISTER"}

    def execute(self, context):
        apply_preferences(context)
        folder = cache_dir()
        bpy.ops.wm.path_open(filepath=str(folder))
        self.report({"INFO"}, f"HumanMoveNet cache: {folder}")
        return {"FINISHED"}
