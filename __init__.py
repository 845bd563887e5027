"""HumanMoveNet Blender extension entry: registers the operators, panels and preferences.

The work itself lives in the bpy-free core package ``hmn_blender_addon``; ``operators`` and
``panels`` are thin Blender classes that call it.
"""

from . import operators, panels

_MODULES = (panels, operators)


def register() -> None:
    for module in _MODULES:
        module.register()


def unregister() -> None:
    for module in reversed(_MODULES):
        module.unregister()
