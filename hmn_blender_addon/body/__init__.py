"""Body models: the open SMPL-format body built from Anny, official SMPL files, one interface (bpy-free)."""
