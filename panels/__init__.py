"""Thin Blender UI: the sidebar tab "HumanMoveNet", the scene settings, the add-on preferences."""

import bpy

from . import preferences
from .properties import HMNSceneSettings
from .sidebar import VIEW3D_PT_humanmovenet

CLASSES = (preferences.HMNAddonPreferences, HMNSceneSettings, VIEW3D_PT_humanmovenet)

_register_classes, _unregister_classes = bpy.utils.register_classes_factory(CLASSES)


def register() -> None:
    _register_classes()
    bpy.types.Scene.hmn = bpy.props.PointerProperty(type=HMNSceneSettings)


def unregister() -> None:
    del bpy.types.Scene.hmn
    _unregister_classes()
