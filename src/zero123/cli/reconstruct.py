"""``zero123 reconstruct``: a textured mesh from posed views (``--views``) or from one image."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import DEFAULT_MODEL, option_names, run_cli_errors

ROUTES = ("views",)  # image routes: "views" = generated views -> fit ("sds" is planned)
TURNTABLES = ("mp4", "gif", "none")


class _StageBars:
    """One rich progress bar per stage, created when the stage reports first."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.tasks: dict[str, int] = {}

    def __enter__(self):
        if self.enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(TextColumn("{task.description:<9}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                                     TimeElapsedColumn(), transient=False)
            self.progress.__enter__()
        return self

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(stage, total=total)
        self.progress.update(self.tasks[stage], completed=done, total=total)

    def __exit__(self, *exc):
        if self.enabled:
            self.progress.__exit__(*exc)


@run_cli_errors
def reconstruct(
    image: Annotated[Optional[Path], typer.Argument(help="Input photo of one object (the fast route). Omit it with --views.")] = None,
    views: Annotated[Optional[Path], typer.Option("--views", help="A views_release object folder (NNN.png RGBA + NNN.npy 3x4 world-to-camera): reconstruct from these posed views; the mesh is in their frame.")] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="Output folder (mesh.glb/.obj/.ply, turntable, report.json).")] = Path("zero123-3d"),
    route: Annotated[str, typer.Option(help="From one image: 'views' (generate a ring of views with the model, fit a field to them).")] = "views",
    elevation: Annotated[float, typer.Option(help="The input photo's elevation in degrees above the object's equator (the camera's height); default 15 = slightly above.")] = 15.0,
    preset: Annotated[str, typer.Option(help="fast (64 px views, ~1 min on a laptop CPU) or quality (128 px, finer grid, longer fit).")] = "fast",
    model: Annotated[str, typer.Option(help="Model folder, checkpoint, or 'bundled'.")] = DEFAULT_MODEL,
    steps: Annotated[int, typer.Option(help="DDIM steps of the generated views.")] = 50,
    guidance: Annotated[float, typer.Option(help="Classifier-free guidance scale.")] = 3.0,
    seed: Annotated[int, typer.Option(help="Seed: generated view i uses seed + i; the fit uses it too.")] = 0,
    fov: Annotated[float, typer.Option(help="--views: horizontal field of view of the views in degrees (the dataset renderer's 49.13).")] = 49.13,
    fit_steps: Annotated[Optional[int], typer.Option(help="Override the preset's optimisation steps.")] = None,
    mesh_resolution: Annotated[Optional[int], typer.Option(help="Override the marching-cubes grid side.")] = None,
    max_faces: Annotated[Optional[int], typer.Option(help="Override the decimation target (faces).")] = None,
    texture_size: Annotated[Optional[int], typer.Option(help="Override the texture side in texels.")] = None,
    turntable: Annotated[str, typer.Option(help="Turntable video: mp4, gif or none.")] = "mp4",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    dtype: Annotated[str, typer.Option(help="Model dtype: auto (fp16 on CUDA, fp32 on CPU), fp32, fp16 or bf16.")] = "auto",
    no_preprocess: Annotated[bool, typer.Option("--no-preprocess", help="Use the photo as it is (no background removal or recentring).")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bars.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print report.json.")] = False,
) -> None:
    """A textured mesh (GLB, OBJ, PLY) and a turntable from posed views (--views) or from one IMAGE."""
    import dataclasses
    import json

    from ..threed import reconstruct as R
    from ..threed.export import write_reconstruction

    # 1. Check arguments before any heavy work
    if (image is None) == (views is None):
        raise ValueError("give either IMAGE (reconstruct from one photo) or --views OBJECT_DIR (from posed views), not both")
    if route not in ROUTES:
        raise ValueError(f"--route must be one of {ROUTES}, got {route!r}")
    if turntable not in TURNTABLES:
        raise ValueError(f"--turntable must be one of {TURNTABLES}, got {turntable!r}")
    if output.exists() and not output.is_dir():
        raise NotADirectoryError(f"-o/--output {output} exists and is not a folder")
    with option_names("preset", "steps", "fit_steps", "mesh_resolution", "max_faces", "texture_size", "seed", "elevation"):
        chain = R.get_preset(preset)
        overrides = {"fit": {"steps": fit_steps, "seed": seed}, "mesh": {"resolution": mesh_resolution, "max_faces": max_faces},
                     "texture": {"size": texture_size}}
        for part, values in overrides.items():
            values = {k: v for k, v in values.items() if v is not None}
            chain = dataclasses.replace(chain, **{part: dataclasses.replace(getattr(chain, part), **values)})
        if image is not None:
            from ..nvs import Preprocessing, SamplingSettings

            route_settings = R.ImageRouteSettings(sampling=SamplingSettings(steps=steps, guidance=guidance),
                                                  preprocessing=Preprocessing(segment="none" if no_preprocess else "auto"),
                                                  reconstruct=chain)
            R.ring_world_to_cams(route_settings.ring(), elevation, route_settings.distance)  # elevation in range
    from ._common import parse_device, parse_dtype

    dev = parse_device(device)
    dt = parse_dtype(dtype, dev)
    fit_device = dev if dev.type != "mps" else "cpu"

    # 2. Reconstruct, with one progress bar per stage
    with _StageBars(not no_progress and not as_json) as bars:
        if views is not None:
            posed = R.load_views(views, fov_deg=fov)
            rec = R.reconstruct_from_views(posed, chain, device=fit_device, progress=bars)
            extra = {"views_dir": str(views)}
        else:
            from ..loading import load_pipeline
            from ..nvs import prepare_input

            prepared = prepare_input(image, route_settings.preprocessing)  # a bad image fails before the model loads
            pipe = load_pipeline(model, device=dev, dtype=dt)
            rec = R.reconstruct_from_image(pipe, prepared, elevation_deg=elevation, settings=route_settings, seed=seed,
                                           device=fit_device, progress=bars)
            extra = {"image": str(image), "model": str(model), "route_name": route}

        # 3. Write the files, then report.json
        write_reconstruction(rec, output, turntable=None if turntable == "none" else turntable, report_extra=extra)
    report = json.loads((output / "report.json").read_text())
    if as_json:
        from ._common import print_json

        print_json(report)
    else:
        mesh = report["mesh"]
        typer.echo(f"wrote {output}/mesh.glb ({mesh['faces']} faces, threshold {mesh['threshold']:.3g}) "
                   f"in {report['timings_s']['total']:.1f} s; see {output}/report.json")
