"""Add-on preferences: where the user's official SMPL files and the caches are.

The core reads these through environment variables (``HMN_SMPL_MODEL_DIR``, ``HMN_CACHE_DIR``)
so that the same settings reach the CLI, headless batch runs and the add-on.
"""

import os

import bpy

ADDON_PACKAGE = __package__.rpartition(".")[0]


def _export_to_environment(prefs: "HMNAddonPreferences") -> None:
    for variable, value in (("HMN_SMPL_MODEL_DIR", prefs.smpl_model_dir), ("HMN_CACHE_DIR", prefs.cache_dir)):
        if value:
            os.environ[variable] = bpy.path.abspath(value)
        else:
            os.environ.pop(variable, None)


def _on_update(self, context):
    _export_to_environment(self)


class HMNAddonPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_PACKAGE

    smpl_model_dir: bpy.props.StringProperty(
        name="SMPL Model Folder",
        description="Folder with the official SMPL files (.pkl or .npz); empty = the open body",
        subtype="DIR_PATH",
        update=_on_update,
    )
    cache_dir: bpy.props.StringProperty(
        name="Cache Folder",
        description="Folder for HumanMoveNet's caches; empty means the user cache folder",
        subtype="DIR_PATH",
        update=_on_update,
    )

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "smpl_model_dir")
        layout.prop(self, "cache_dir")


def apply_preferences(context) -> None:
    """Export the current preferences to the core (called by operators before they run)."""
    addon = context.preferences.addons.get(ADDON_PACKAGE)
    if addon is not None:
        _export_to_environment(addon.preferences)
