"""The embedded spine (DESIGN.md section 5): sagittal profile and vertebra chain, segmental motion.

- :mod:`.profile`: lordosis, kyphosis and sacral slope -> the vertebra chain S1 .. C7 in a body.
- :mod:`.segments`: White & Panjabi's per-level ranges as weights, the chain's forward kinematics.
"""
