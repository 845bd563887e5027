"""The metric definitions of DESIGN.md section 6, as pure functions on numpy arrays.

- :mod:`.angles`: anatomical frames, Cardan angles (flexion/extension about x, lateral bending about
  z, axial rotation about y), lumbar angles (L1 relative to S1) and pelvic angles (S1 relative to the lab).
- :mod:`.cycles`: heel strikes from the feet's motion, gait cycles, per-cycle ranges, Robinson's
  symmetry index, and the ``metrics`` block of ``report.json``/``truth.json`` (section 10).
- :mod:`.accuracy`: MPJPE, PA-MPJPE, acceleration error, silhouette IoU, PSNR, Hausdorff distance.
- :mod:`.view`: the camera's view of the walk (side, oblique, front, back) and the planes it shows.

Every part of the project (synthetic truth, pipeline reports, benchmark) uses these and only these.
"""
