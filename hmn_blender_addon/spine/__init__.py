"""The embedded spine (DESIGN.md section 5): sagittal profile and vertebra chain, segmental motion.

- :mod:`.profile`: lordosis, kyphosis and sacral slope -> the vertebra chain S1 .. C7 in a body.
- :mod:`.segments`: White & Panjabi's per-level ranges as weights, the chain's forward kinematics.
- :mod:`.morphology`: the subject's profile from the back contour of the person mask (or the
  fitted body's back) and the rest chain in the fitted body.
- :mod:`.dynamic`: the chain moved by the fitted trunk motion, rig rotations, skinning weights.
"""
