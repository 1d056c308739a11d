"""``zero123 reconstruct``: a textured mesh from posed views (``--views``) or from one image (a thin
layer over :mod:`zero123.threed.reconstruct` and :func:`zero123.threed.export.write_reconstruction`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import (
    DEFAULT_MODEL,
    DEFAULT_QUALITY,
    DeviceOption,
    DtypeOption,
    GuidanceOption,
    JsonOption,
    ModelOption,
    OutOption,
    ProgressOption,
    QualityOption,
    SolverOption,
    StepsOption,
    ThreadsOption,
    TrustPickleOption,
)

#: Routes from one image: "views" = generate a ring of views with the model, fit a field to them;
#: "sds" = fit a field to the input view and to the model's score of random views (score distillation).
ROUTES = ("views", "sds")
INITS = ("hull", "views")
TURNTABLES = ("mp4", "gif", "none")
#: The library's DEFAULT_INPUT_ELEVATION (kept literal: this module is imported before torch is).
DEFAULT_ELEVATION = 15.0


def reconstruct(
    image: Annotated[Optional[Path], typer.Argument(help="Input photo of one object (the fast route, or score distillation with --route sds). Omit it with --views.")] = None,
    views: Annotated[Optional[Path], typer.Option("--views", help="A views_release object folder (NNN.png RGBA + NNN.npy 3x4 world-to-camera): reconstruct from these posed views; the mesh is in their frame.")] = None,
    out: OutOption = Path("zero123-3d"),
    route: Annotated[str, typer.Option("--route", help="From one image: 'views' (generate a ring of views with the model, fit a field to them; fast) or 'sds' (score distillation: fit the input view and the model's score of random views; slower, no generated views).")] = "views",
    elevation: Annotated[Optional[str], typer.Option("--elevation", help="The photo's elevation in degrees above the object's equator (the camera's height; 15 = slightly above), or 'auto' to estimate it with the model. Default: auto for --route sds, 15 for --route views.")] = None,
    init: Annotated[str, typer.Option("--init", help="--route sds: start from the input silhouette's hull ('hull') or from the fast route's result ('views'), then refine with SDS.")] = "hull",
    preset: Annotated[str, typer.Option("--preset", help="fast (64 px views, about a minute on a laptop CPU; sds: a few minutes) or quality (128 px, finer grid, longer fit).")] = "fast",
    model: ModelOption = DEFAULT_MODEL,
    quality: QualityOption = DEFAULT_QUALITY,
    steps: StepsOption = None,
    solver: SolverOption = None,
    guidance: GuidanceOption = 3.0,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: generated view i uses seed + i; the fit uses it too.")] = 0,
    fov: Annotated[float, typer.Option("--fov", help="--views: horizontal field of view of the views in degrees (the dataset renderer's 49.13).")] = 49.13,
    fit_steps: Annotated[Optional[int], typer.Option("--fit-steps", help="Override the preset's optimisation steps.")] = None,
    mesh_resolution: Annotated[Optional[int], typer.Option("--mesh-resolution", help="Override the marching-cubes grid side.")] = None,
    max_faces: Annotated[Optional[int], typer.Option("--max-faces", help="Override the decimation target (faces).")] = None,
    texture_size: Annotated[Optional[int], typer.Option("--texture-size", help="Override the texture side in texels.")] = None,
    turntable: Annotated[str, typer.Option("--turntable", help="Turntable video: mp4, gif or none.")] = "mp4",
    no_preprocess: Annotated[bool, typer.Option("--no-preprocess", help="Use the photo as it is (no cut-out or recentring).")] = False,
    device: DeviceOption = "auto",
    dtype: DtypeOption = "auto",
    trust_pickle: TrustPickleOption = False,
    threads: ThreadsOption = None,
    progress: ProgressOption = True,
    as_json: JsonOption = False,
) -> None:
    """A textured mesh (GLB, OBJ, PLY), a turntable and report.json from posed views (--views) or from one IMAGE (--route views or sds)."""
    import dataclasses
    import json

    from ..threed import reconstruct as R
    from ..threed.export import write_reconstruction
    from ..utils.progress import progress_display
    from ._common import check_output_dir, option_names, parse_device, parse_dtype, print_json

    # 1. Check every argument and the output folder before any heavy work
    if (image is None) == (views is None):
        raise ValueError("give either IMAGE (reconstruct from one photo) or --views OBJECT_DIR (from posed views), not both")
    if route not in ROUTES:
        raise ValueError(f"--route must be one of {ROUTES}, got {route!r}")
    if init not in INITS:
        raise ValueError(f"--init must be one of {INITS}, got {init!r}")
    if views is not None and (route != "views" or init != "hull"):
        raise ValueError("--route sds and --init apply to one IMAGE, not to --views")
    elevation_value = _parse_elevation(elevation, route)
    if turntable not in TURNTABLES:
        raise ValueError(f"--turntable must be one of {TURNTABLES}, got {turntable!r}")
    check_output_dir(out)
    from ._common import parse_sampling

    sampling = parse_sampling(quality, steps=steps, solver=solver, guidance=guidance)
    with option_names("preset", "fit_steps", "resolution", "max_faces", "size", "elevation"):
        chain = R.get_preset(preset)
        overrides = {"fit": {"steps": fit_steps, "seed": seed}, "mesh": {"resolution": mesh_resolution, "max_faces": max_faces},
                     "texture": {"size": texture_size}}
        for part, values in overrides.items():
            values = {k: v for k, v in values.items() if v is not None}
            chain = dataclasses.replace(chain, **{part: dataclasses.replace(getattr(chain, part), **values)})
        if image is not None:
            from ..nvs import Preprocessing

            route_settings = R.ImageRouteSettings(sampling=sampling,
                                                  preprocessing=Preprocessing(segment="none" if no_preprocess else "auto"),
                                                  reconstruct=chain)
            if route == "sds":
                from ..threed.sds import get_sds_preset

                sds = get_sds_preset(preset)
                sds = dataclasses.replace(sds, guidance=dataclasses.replace(sds.guidance, guidance_scale=guidance),
                                          **({"steps": fit_steps} if fit_steps is not None else {}),
                                          mesh=dataclasses.replace(sds.mesh, **{k: v for k, v in overrides["mesh"].items() if v is not None}),
                                          texture=dataclasses.replace(sds.texture, **{k: v for k, v in overrides["texture"].items() if v is not None}))
            if elevation_value != "auto":
                R.ring_world_to_cams(route_settings.ring(), elevation_value, route_settings.distance)  # the elevation fits the ring
    dev = parse_device(device)
    dt = parse_dtype(dtype, dev)
    from ..threed.fit import fit_device

    fitting = fit_device(dev)

    # 2. Reconstruct, one progress bar per stage
    with progress_display(progress and not as_json) as bars:
        tasks: dict[str, int] = {}

        def on_stage(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(stage, total=total)
            bars.update(tasks[stage], completed=done, total=total)

        if views is not None:
            rec = R.reconstruct_from_views(R.load_views(views, fov_deg=fov), chain, device=fitting, progress=on_stage)
            extra = {"views_dir": str(views)}
        else:
            from ..loading import load_pipeline
            from ..nvs import prepare_input

            prepared = prepare_input(image, route_settings.preprocessing)  # a bad image fails before the model loads
            with option_names("model"):
                pipe = load_pipeline(model, device=dev, dtype=dt, trust_pickle=trust_pickle)
            from ..threed.elevation import ElevationSettings

            elevation_settings = ElevationSettings(sampling=dataclasses.replace(sampling, steps=min(sampling.steps, 20)))
            if route == "sds":
                from ..threed.sds import reconstruct_sds

                rec = reconstruct_sds(pipe, prepared, elevation_deg=elevation_value, settings=sds, init=init, seed=seed,
                                      device=fitting, progress=on_stage, preprocessing=route_settings.preprocessing,
                                      elevation_settings=elevation_settings, init_settings=route_settings)
            else:
                estimate = None
                if elevation_value == "auto":
                    from ..threed.elevation import estimate_elevation

                    estimate = estimate_elevation(pipe, prepared, elevation_settings, seed=seed,
                                                  progress=lambda done, total: on_stage("elevation", done, total))
                    elevation_value = estimate.elevation_deg
                rec = R.reconstruct_from_image(pipe, prepared, elevation_deg=elevation_value, settings=route_settings, seed=seed,
                                               device=fitting, progress=on_stage)
                rec.extra["elevation_source"] = "given" if estimate is None else "estimated"
                if estimate is not None:
                    rec.extra["elevation_estimate"] = estimate.report()
            extra = {"image": str(image), "model": str(model), "route_name": route}

    # 3. Write the files, report.json last
    write_reconstruction(rec, out, turntable=None if turntable == "none" else turntable, report_extra=extra)
    report = json.loads((out / "report.json").read_text())
    if as_json:
        print_json(report)
    else:
        mesh = report["mesh"]
        typer.echo(f"wrote {out}/mesh.glb ({mesh['faces']} faces, threshold {mesh['threshold']:.3g}) "
                   f"in {report['timings_s']['total']:.1f} s; see {out}/report.json")


def _parse_elevation(text: Optional[str], route: str) -> float | str:
    """``--elevation``: degrees in (-90, 90), or ``"auto"`` (the default for the sds route)."""
    import math

    if text is None:
        return "auto" if route == "sds" else DEFAULT_ELEVATION
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"--elevation must be a number of degrees or 'auto', got {text!r}") from None
    if not (math.isfinite(value) and -90.0 < value < 90.0):
        raise ValueError(f"--elevation is the photo's elevation in degrees and must be in (-90, 90), got {text!r}")
    return value
