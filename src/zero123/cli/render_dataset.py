"""``zero123 render-dataset``: render procedural objects or mesh files into a views_release folder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def render_dataset(
    out: Path = typer.Option(..., "--out", help="Output folder (created; rerun with the same settings to resume)."),
    procedural: Optional[int] = typer.Option(None, "--procedural", help="Render N seeded procedural objects."),
    meshes: Optional[str] = typer.Option(None, "--meshes", help="A mesh file, a folder (recursive) or a glob."),
    views: int = typer.Option(12, "--views", help="Views per object (SPEC section 6: 12)."),
    size: int = typer.Option(256, "--size", help="Image side in pixels (the original used 512)."),
    backend: str = typer.Option("gl", "--backend", help="gl (moderngl on EGL, fast), torch (pure PyTorch) or auto."),
    workers: int = typer.Option(1, "--workers", help="Worker processes."),
    ray: Optional[str] = typer.Option(None, "--ray", help="Run each object as a Ray task: 'auto', 'local' or a cluster address."),
    seed: int = typer.Option(0, "--seed", help="Seed of objects, cameras and lights."),
    direction: str = typer.Option("cube", "--direction", help="Camera directions: cube (original) or uniform."),
    max_faces: int = typer.Option(2_000_000, "--max-faces", help="Refuse meshes with more faces."),
    min_parts: int = typer.Option(3, "--min-parts", help="Procedural objects: fewest parts (body included)."),
    max_parts: int = typer.Option(7, "--max-parts", help="Procedural objects: most parts."),
    texture_probability: float = typer.Option(0.5, "--texture-probability", help="Procedural objects: chance a part is textured."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Render objects into the views_release layout (NNN.png RGBA + NNN.npy world-to-camera,
    valid_paths.json, manifest.json). Resumable; broken meshes are recorded and skipped."""
    from rich.console import Console

    from ..data.writer import RenderSettings, mesh_jobs, procedural_jobs
    from ..data.writer import render_dataset as run

    console = Console(stderr=True)
    try:
        if (procedural is None) == (meshes is None):
            raise ValueError("give exactly one of --procedural N or --meshes PATH_OR_GLOB")
        settings = RenderSettings(num_views=views, image_size=size, backend=backend, direction=direction,
                                  max_faces=max_faces, min_parts=min_parts, max_parts=max_parts,
                                  texture_probability=texture_probability)
        if procedural is not None:
            jobs = procedural_jobs(procedural, seed)
        else:
            from ..data.meshes import find_meshes

            jobs = mesh_jobs(find_meshes(meshes))
        report = run(out, jobs, settings, seed=seed, workers=workers, ray_address=ray, progress=progress)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as e:
        console.print(f"error: {e}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
    rate = len(report.rendered) / report.seconds if report.seconds > 0 else 0.0
    console.print(
        f"rendered {len(report.rendered)}, skipped {len(report.skipped)} (already done), failed {len(report.failed)} "
        f"in {report.seconds:.1f} s ({rate:.1f} objects/s, {rate * views:.0f} images/s) -> {out}",
        markup=False, highlight=False, soft_wrap=True,
    )
    for name, err in list(report.failed.items())[:10]:
        console.print(f"  failed {name}: {err}", markup=False, highlight=False, soft_wrap=True)
