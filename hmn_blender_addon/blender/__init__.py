"""The only part of the core that imports ``bpy``: turns core results into Blender data.

Used by the add-on's operators and by the headless command line alike.
"""
