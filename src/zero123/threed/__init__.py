"""Image to 3D in pure PyTorch: radiance fields, volume rendering, fitting, meshes, textures, metrics.

One job per module:

* :mod:`.field` -- radiance fields (a dense grid, coarse to fine; a multi-resolution hash grid).
* :mod:`.volume` -- the volume renderer (ray-box intersection, stratified samples, compositing,
  opacity/depth/normals, empty-space skipping with an occupancy grid).
* :mod:`.fit` -- fitting a field to posed images (settings dataclass with presets, plug-in losses).
* :mod:`.mesh` -- marching cubes at an automatically chosen threshold, floaters dropped, decimation.
* :mod:`.texture` -- xatlas UVs, texture baked from the field, images projected, seams dilated.
* :mod:`.export` -- GLB / OBJ / PLY / turntable video, all atomic.
* :mod:`.metrics` -- Chamfer distance, volume IoU, F-score (and the SyncDreamer GSO-30 preset).
* :mod:`.reconstruct` -- the two use-cases: from posed views, and from one image (the fast route).
* :mod:`.guidance` -- Zero-1-to-3 score-distillation guidance (the SDS gradient on the pipeline's seams).
* :mod:`.sds` -- the score-distillation route from one image (settings with presets, the fitting loop).
* :mod:`.elevation` -- estimating the input photo's elevation with the model.

Cameras come from :mod:`zero123.camera` only (``docs/conventions.md``, "Cameras").
"""
