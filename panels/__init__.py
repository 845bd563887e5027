"""Thin Blender UI: the 3D Viewport sidebar tab "HumanMoveNet" and the add-on preferences."""

import bpy

from . import preferences
from .sidebar import VIEW3D_PT_humanmovenet

CLASSES = (preferences.HMNAddonPreferences, VIEW3D_PT_humanmovenet)

register, unregister = bpy.utils.register_classes_factory(CLASSES)
