"""Writing reconstructions: GLB, OBJ + MTL + texture, PLY, a turntable video, all atomic.

Every file is written to a temporary sibling and renamed into place (:mod:`zero123.utils.fileio`),
so a reader never sees half a mesh. The mesh is in the world frame of the cameras it was fitted to
(z-up, as the ``views_release`` cameras; a mesh from ``--views`` overlays the input cameras exactly):

* ``mesh.glb``: binary glTF, uncompressed (no Draco, no WebP), PBR material with the base-colour
  texture, metallic 0, roughness 1. Stored +Y up as the glTF specification requires (raw
  coordinates ``(x, z, -y)`` of the world's ``(x, y, z)``), so viewers (and the web app) show the
  object upright; Blender and :func:`zero123.data.meshes.load_mesh` turn it back into the z-up frame.
* ``mesh.obj`` + ``mesh.mtl`` + ``mesh_texture.png``: Wavefront OBJ with ``vt`` UVs, ``map_Kd``, in
  the z-up world frame (in Blender: import with "Up axis: Z").
* ``mesh.ply``: binary PLY of the extracted (unsplit) mesh with vertex colours, z-up world frame.
* ``turntable.mp4`` (or ``.gif``): the textured mesh rendered by the project's renderer
  (:func:`zero123.render.create_renderer`) from ``frames`` cameras turning around the vertical axis;
  ``turntable.png``: a strip of some of those frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..camera import WORLD_FROM_GLTF
from ..utils.fileio import atomic_path, atomic_save_image, atomic_write
from .mesh import ExtractedMesh
from .texture import TexturedMesh

TURNTABLE_FORMATS: tuple[str, ...] = ("mp4", "gif")


def _trimesh_textured(mesh: TexturedMesh):
    import trimesh

    material = trimesh.visual.material.PBRMaterial(
        name="zero123", baseColorTexture=Image.fromarray(mesh.texture), metallicFactor=0.0, roughnessFactor=1.0
    )
    visual = trimesh.visual.TextureVisuals(uv=mesh.uvs, material=material)
    return trimesh.Trimesh(mesh.vertices, mesh.faces, visual=visual, process=False)


def write_glb(mesh: TexturedMesh, path: str | Path) -> Path:
    """Binary glTF with UVs and the base-colour texture (uncompressed), +Y up (glTF's frame)."""
    gltf = _trimesh_textured(mesh)
    gltf.apply_transform(np.linalg.inv(WORLD_FROM_GLTF))
    data = gltf.export(file_type="glb")
    with atomic_write(path) as f:
        f.write(data)
    return Path(path)


def write_obj(mesh: TexturedMesh, path: str | Path) -> list[Path]:
    """``NAME.obj`` + ``NAME.mtl`` + ``NAME_texture.png`` next to it; returns the three paths."""
    path = Path(path)
    mtl, png = path.with_suffix(".mtl"), path.with_name(f"{path.stem}_texture.png")
    v, uv, f = mesh.vertices, mesh.uvs, mesh.faces + 1
    lines = [f"# zero123 reconstruction: {len(v)} vertices, {len(f)} faces", f"mtllib {mtl.name}", "usemtl zero123"]
    lines += [f"v {a:.6f} {b:.6f} {c:.6f}" for a, b, c in v]
    lines += [f"vt {a:.6f} {b:.6f}" for a, b in uv]
    lines += [f"f {a}/{a} {b}/{b} {c}/{c}" for a, b, c in f]
    atomic_save_image(Image.fromarray(mesh.texture), png)
    with atomic_write(mtl, "w") as fh:
        fh.write(f"newmtl zero123\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nd 1\nillum 1\nmap_Kd {png.name}\n")
    with atomic_write(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return [path, mtl, png]


def write_ply(mesh: ExtractedMesh, path: str | Path) -> Path:
    """Binary PLY with per-vertex colours (the extracted mesh, before the UV seams split it)."""
    data = mesh.to_trimesh().export(file_type="ply")
    with atomic_write(path) as f:
        f.write(data)
    return Path(path)


def turntable_cameras(mesh: TexturedMesh, frames: int = 36, elevation_deg: float = 20.0, fov_deg: float = 49.13,
                      start_azimuth_deg: float = 0.0) -> np.ndarray:
    """``(frames, 3, 4)`` world-to-camera matrices circling the mesh's bounding-box centre (z-up),
    far enough that its bounding sphere fits the view."""
    import torch

    from ..camera import world_to_cams_from_spherical

    lo, hi = mesh.vertices.min(0), mesh.vertices.max(0)
    center = (lo + hi) / 2
    radius = float(np.linalg.norm(mesh.vertices - center, axis=1).max())
    distance = 1.1 * radius / math.sin(math.radians(fov_deg) / 2)
    az = torch.deg2rad(torch.tensor(start_azimuth_deg, dtype=torch.float64) + torch.arange(frames, dtype=torch.float64) * 360.0 / frames)
    polar = torch.full((frames,), math.radians(90.0 - elevation_deg), dtype=torch.float64)
    w2c = world_to_cams_from_spherical(polar, az, torch.full((frames,), distance, dtype=torch.float64)).numpy()
    w2c[:, :, 3] -= np.einsum("nij,j->ni", w2c[:, :, :3], center)  # look at the centre: t' = t - R c
    return w2c


def render_turntable(mesh: TexturedMesh, frames: int = 36, size: int = 256, elevation_deg: float = 20.0,
                     backend: str = "auto", start_azimuth_deg: float = 0.0) -> np.ndarray:
    """``(frames, size, size, 4)`` uint8 RGBA views of the textured mesh, flat-lit (the texture holds
    the appearance)."""
    from ..render import DEFAULT_FOV_DEG, Light, create_renderer

    renderer = create_renderer(backend, image_size=size)
    try:
        w2c = turntable_cameras(mesh, frames, elevation_deg, DEFAULT_FOV_DEG, start_azimuth_deg)
        return renderer.render(mesh.to_render_mesh(), w2c, Light(ambient=1.0, intensity=0.0))
    finally:
        renderer.close()


def on_white(rgba: np.ndarray) -> np.ndarray:
    """RGBA uint8 ``(..., 4)`` composited on white -> RGB uint8."""
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    return (rgba[..., :3].astype(np.float32) * a + 255.0 * (1 - a) + 0.5).astype(np.uint8)


def write_turntable(frames: np.ndarray, path: str | Path, fps: int = 12) -> Path:
    """Write ``(N, H, W, 4)`` RGBA frames as ``.mp4`` (H.264 through imageio-ffmpeg) or ``.gif``."""
    path = Path(path)
    kind = path.suffix.lower().lstrip(".")
    if kind not in TURNTABLE_FORMATS:
        raise ValueError(f"turntable must be one of {TURNTABLE_FORMATS}, got {path.name!r}")
    rgb = on_white(frames)
    with atomic_path(path) as tmp:
        if kind == "gif":
            images = [Image.fromarray(f) for f in rgb]
            images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
        else:
            from ._deps import require

            require("imageio_ffmpeg")
            import imageio.v2 as imageio

            imageio.mimwrite(tmp, list(rgb), fps=fps, codec="libx264", quality=8, macro_block_size=1,
                             ffmpeg_log_level="error", output_params=["-pix_fmt", "yuv420p"])
    return path


def turntable_strip(frames: np.ndarray, count: int = 8, label: str | None = None) -> Image.Image:
    """``count`` evenly spaced frames side by side (a picture for documents)."""
    from ..utils.grid import contact_sheet

    idx = np.linspace(0, len(frames), count, endpoint=False).astype(int)
    tiles = [Image.fromarray(frames[i], "RGBA") for i in idx]
    return contact_sheet([tiles], row_labels=[label] if label else None, pad=2)


@dataclass
class ExportedFiles:
    """Paths of what :func:`export_all` wrote (None when not written)."""

    glb: Path
    obj: Path
    mtl: Path
    texture: Path
    ply: Path
    turntable: Path | None = None
    turntable_strip: Path | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {k: None if v is None else str(v) for k, v in self.__dict__.items()}


def export_all(mesh: ExtractedMesh, textured: TexturedMesh, out_dir: str | Path, *, turntable: str | None = "mp4",
               frames: int = 36, size: int = 256, elevation_deg: float = 20.0, backend: str = "auto",
               start_azimuth_deg: float = 0.0) -> ExportedFiles:
    """Write every format into ``out_dir`` (created): ``mesh.glb``, ``mesh.obj/.mtl/_texture.png``,
    ``mesh.ply`` and, unless ``turntable`` is None, ``turntable.<mp4|gif>`` and ``turntable.png``."""
    out = Path(out_dir)
    if turntable is not None and turntable not in TURNTABLE_FORMATS:
        raise ValueError(f"turntable must be one of {TURNTABLE_FORMATS} or None, got {turntable!r}")
    out.mkdir(parents=True, exist_ok=True)
    glb = write_glb(textured, out / "mesh.glb")
    obj, mtl, png = write_obj(textured, out / "mesh.obj")
    ply = write_ply(mesh, out / "mesh.ply")
    video = strip = None
    if turntable is not None:
        views = render_turntable(textured, frames, size, elevation_deg, backend, start_azimuth_deg)
        video = write_turntable(views, out / f"turntable.{turntable}")
        strip = atomic_save_image(turntable_strip(views), out / "turntable.png")
    return ExportedFiles(glb, obj, mtl, png, ply, video, strip)


def write_reconstruction(rec, out_dir: str | Path, *, turntable: str | None = "mp4", frames: int = 36,
                         backend: str = "auto", report_extra: dict | None = None) -> ExportedFiles:
    """Everything of a :class:`~zero123.threed.reconstruct.Reconstruction` into ``out_dir``: the
    files of :func:`export_all`, ``views.png`` (the fast route's generated views) and
    ``report.json`` (:meth:`Reconstruction.report`, the written files and ``report_extra``), each
    written atomically; ``report.json`` comes last. The turntable starts at the input camera's azimuth
    (the fast route) or the first view's."""
    import json
    import time

    from ..camera import elevation_deg_from_world_to_cam, spherical_from_world_to_cams
    from .reconstruct import silhouette_iou, views_sheet

    t = time.perf_counter()
    out = Path(out_dir)
    first = rec.input_world_to_cam if rec.input_world_to_cam is not None else rec.views.world_to_cams[0].numpy()
    azimuth = math.degrees(float(spherical_from_world_to_cams(first)[1].reshape(-1)[0]))
    elevation = min(max(elevation_deg_from_world_to_cam(first), -60.0), 60.0)
    files = export_all(rec.mesh, rec.textured, out, turntable=turntable, frames=frames, backend=backend,
                       elevation_deg=elevation, start_azimuth_deg=azimuth)
    report = rec.report()
    if rec.generated is not None:
        atomic_save_image(views_sheet(rec), out / "views.png")
        report["input_silhouette_iou"] = silhouette_iou(rec.mesh, rec.input_world_to_cam, rec.input_mask)
    report["timings_s"]["export"] = round(time.perf_counter() - t, 3)
    # file names relative to report.json's folder, so the folder can move (a batch job renames it into place)
    written = {**files.as_dict(), **({"views": str(out / "views.png")} if rec.generated is not None else {})}
    report["files"] = {k: None if v is None else Path(v).name for k, v in written.items()}
    report.update(report_extra or {})
    with atomic_write(out / "report.json", "w") as f:
        json.dump(report, f, indent=2)
    return files
