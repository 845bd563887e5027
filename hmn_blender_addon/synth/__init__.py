"""Rendered ground-truth gait clips (DESIGN.md section 7): the truth side, free of bpy.

An Anny body (phenotype from :mod:`.phenotype`) walks with the limb motion of a real CMU walk
(retargeted through :mod:`..body.anny_bridge`) while its trunk (pelvis, lumbar and thoracic
spine) follows a vertebra-level model (:mod:`.trunk`) along a drawn sagittal profile
(:mod:`.spine`). :mod:`.gait` assembles the motion, :mod:`.camera` the view, :mod:`.truth` the
``truth.json``; ``hmn_blender_addon/blender/synth_render.py`` renders it, and :mod:`.command`
is the ``synth`` command.
"""
