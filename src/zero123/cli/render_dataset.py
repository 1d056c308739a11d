"""``zero123 render-dataset``: render procedural objects or mesh files into a views_release folder."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ._common import (
    BackendOption,
    KindOption,
    MaxPartsOption,
    MinPartsOption,
    OutOption,
    ProgressOption,
    SeedOption,
    TextureProbabilityOption,
    ThreadsOption,
    fail,
)


def render_dataset(
    out: OutOption,
    procedural: Annotated[Optional[int], typer.Option("--procedural", help="Render N seeded procedural objects.")] = None,
    meshes: Annotated[Optional[str], typer.Option("--meshes", help="A mesh file, a folder (recursive) or a glob.")] = None,
    views: Annotated[int, typer.Option("--views", help="Views per object (the original dataset: 12).")] = 12,
    size: Annotated[int, typer.Option("--size", help="Image side in pixels (the original used 512; match the training config's data.image_size).")] = 256,
    backend: BackendOption = "gl",
    workers: Annotated[int, typer.Option("--workers", help="Worker processes.")] = 1,
    ray: Annotated[Optional[str], typer.Option("--ray", help="Run each object as a Ray task: 'auto', 'local' or a cluster address.")] = None,
    seed: SeedOption = 0,
    direction: Annotated[str, typer.Option("--direction", help="Camera directions: cube (original) or uniform.")] = "cube",
    max_faces: Annotated[int, typer.Option("--max-faces", help="Refuse meshes with more faces.")] = 2_000_000,
    min_parts: MinPartsOption = 3,
    max_parts: MaxPartsOption = 7,
    texture_probability: TextureProbabilityOption = 0.5,
    kind: KindOption = "primitives",
    elevation_min: Annotated[float, typer.Option("--elevation-min", help="Lowest camera elevation (deg above the equator; default: the whole sphere).")] = -90.0,
    elevation_max: Annotated[float, typer.Option("--elevation-max", help="Highest camera elevation (deg).")] = 90.0,
    progress: ProgressOption = True,
    threads: ThreadsOption = None,
) -> None:
    """Render objects into the views_release layout (NNN.png RGBA + NNN.npy world-to-camera,
    valid_paths.json, manifest.json). Resumable; broken meshes are recorded and skipped, but a run in
    which every object failed exits with an error."""
    from ..data.writer import RenderSettings, mesh_jobs, procedural_jobs
    from ..data.writer import render_dataset as run
    from ._common import check_output_dir

    # 1. Check the options and the output folder, list the jobs
    if (procedural is None) == (meshes is None):
        raise ValueError("give exactly one of --procedural N or --meshes PATH_OR_GLOB")
    settings = RenderSettings(num_views=views, image_size=size, backend=backend, direction=direction,
                              max_faces=max_faces, min_parts=min_parts, max_parts=max_parts,
                              texture_probability=texture_probability, kind=kind,
                              elevation_min=elevation_min, elevation_max=elevation_max)
    check_output_dir(out)
    if procedural is not None:
        jobs = procedural_jobs(procedural, seed)
    else:
        from ..data.meshes import find_meshes

        jobs = mesh_jobs(find_meshes(meshes))

    # 2. Render (resumable), then report
    try:
        report = run(out, jobs, settings, seed=seed, workers=workers, ray_address=ray, progress=progress)
    except RuntimeError as e:  # the environment (Ray missing, a cluster unreachable), not a bug
        raise fail(str(e)) from None
    rate = len(report.rendered) / report.seconds if report.seconds > 0 else 0.0
    typer.echo(
        f"rendered {len(report.rendered)}, skipped {len(report.skipped)} (already done), failed {len(report.failed)} "
        f"in {report.seconds:.1f} s ({rate:.1f} objects/s, {rate * views:.0f} images/s) -> {out}", err=True,
    )
    for name, err in list(report.failed.items())[:10]:
        typer.echo(f"  failed {name}: {err}", err=True)
    if report.failed and not report.rendered and not report.skipped:
        first = next(iter(report.failed.values()))
        raise fail(f"every object failed ({len(report.failed)}), nothing was rendered; the first error: {first}", code=1)
