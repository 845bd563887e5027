"""Thin Blender operators: each one calls the core (``hmn_blender_addon``) and reports the result."""

import bpy

from .environment import HMN_OT_check_environment, HMN_OT_open_cache_folder

CLASSES = (HMN_OT_check_environment, HMN_OT_open_cache_folder)

register, unregister = bpy.utils.register_classes_factory(CLASSES)
