"""Thin Blender operators: each one calls the core (``hmn_blender_addon``) and reports the result."""

import bpy

from .environment import HMN_OT_check_environment, HMN_OT_open_cache_folder
from .reconstruct import CLASSES as RECONSTRUCT_CLASSES

CLASSES = (HMN_OT_check_environment, HMN_OT_open_cache_folder, *RECONSTRUCT_CLASSES)

register, unregister = bpy.utils.register_classes_factory(CLASSES)
