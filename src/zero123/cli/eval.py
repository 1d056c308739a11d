"""``zero123 eval``: evaluation commands (``nvs``: novel-view synthesis metrics; ``render-testset``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import (
    DEFAULT_QUALITY,
    BackendOption,
    DeviceOption,
    DtypeOption,
    EtaOption,
    GuidanceOption,
    JsonOption,
    KindOption,
    MaxBatchOption,
    MaxPartsOption,
    MinPartsOption,
    OutOption,
    ProgressOption,
    SeedOption,
    QualityOption,
    SolverOption,
    StepsOption,
    TextureProbabilityOption,
    ThreadsOption,
    TrustPickleOption,
    command,
)

app = typer.Typer(name="eval", help="Evaluate models (novel-view PSNR / SSIM / LPIPS; 3D Chamfer / volume IoU / F-score).",
                  no_args_is_help=True)


def _protocol(protocol: str, data: Path, split, targets, input_view, resolution, lpips_backbone):
    """The protocol with the command's overrides. A folder written by `zero123 eval render-testset`
    carries its targets (testset.json): with the default protocol they become the defaults."""
    from ..eval import get_protocol, parse_targets

    proto = get_protocol(protocol)
    testset = data / "testset.json"
    if protocol == "views-release" and testset.is_file():
        meta = json.loads(testset.read_text())
        split = split if split is not None else "all"
        targets = targets if targets is not None else meta.get("targets")
    changes = {"split": split, "targets": parse_targets(targets) if targets is not None else None,
               "input_view": input_view, "resolution": resolution, "lpips_backbone": lpips_backbone}
    changes = {k: v for k, v in changes.items() if v is not None}
    return proto.replace(**changes) if changes else proto


def nvs(
    data: Annotated[Path, typer.Option("--data", help="views_release folder: <object>/NNN.png + NNN.npy.")],
    model: Annotated[str, typer.Option("--model", help="A model folder, a checkpoint file, a known name, 'bundled', or 'identity' (baseline only).")],
    out: OutOption,
    protocol: Annotated[str, typer.Option("--protocol", help="views-release | syncdreamer-gso30 | zero123-rtmv.")] = "views-release",
    split: Annotated[Optional[str], typer.Option("--split", help="val | train | all (default: the protocol's).")] = None,
    targets: Annotated[Optional[str], typer.Option("--targets", help="'others', view indices ('1-16') or camera changes ('az:90,az:180,el:30,el:-30').")] = None,
    input_view: Annotated[Optional[int], typer.Option("--input-view", help="Conditioning view index (default: the protocol's).")] = None,
    resolution: Annotated[Optional[int], typer.Option("--resolution", help="Metric resolution in pixels (default: the protocol's).")] = None,
    lpips_backbone: Annotated[Optional[str], typer.Option("--lpips-backbone", help="vgg | alex | squeeze.")] = None,
    lpips: Annotated[bool, typer.Option("--lpips/--no-lpips", help="Compute LPIPS when the lpips package and weights exist.")] = True,
    quality: QualityOption = DEFAULT_QUALITY,
    steps: StepsOption = None,
    solver: SolverOption = None,
    guidance: GuidanceOption = 3.0,
    eta: EtaOption = 1.0,
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed (the same for every object, so results do not depend on order or --limit).")] = 0,
    limit: Annotated[Optional[int], typer.Option("--limit", help="Evaluate only the first N objects.")] = None,
    max_batch: MaxBatchOption = None,
    device: DeviceOption = "auto",
    dtype: DtypeOption = "auto",
    trust_pickle: TrustPickleOption = False,
    save_images: Annotated[bool, typer.Option("--save-images", help="Also write every prediction as PNG.")] = False,
    progress: ProgressOption = True,
    threads: ThreadsOption = None,
) -> None:
    """Score novel views predicted by MODEL (and, always, the identity baseline) on local data."""
    from ..devices import dtype_name
    from ..eval import PipelinePredictor, ViewsFolder, evaluate, format_summary
    from ._common import check_output_dir, option_names, parse_device, parse_dtype, parse_sampling

    # 1. Check the options, the protocol, the output folder and the data before the model loads
    sampling = parse_sampling(quality, steps=steps, solver=solver, guidance=guidance, eta=eta, max_batch=max_batch)
    with option_names("limit"):
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
    dev = parse_device(device)
    dt = parse_dtype(dtype, dev)
    proto = _protocol(protocol, Path(data), split, targets, input_view, resolution, lpips_backbone)
    check_output_dir(out)
    views = ViewsFolder(data, split=proto.split)

    # 2. The model (through the one loader), unless only the baseline is asked for
    predictor = None
    if model != "identity":
        from ..loading import load_pipeline

        with option_names("model"):
            pipe = load_pipeline(model, device=dev, dtype=dt, trust_pickle=trust_pickle)
        predictor = PipelinePredictor(pipe, sampling.steps, sampling.guidance, sampling.eta, sampling.max_batch, name="model",
                                      solver=sampling.solver)

    # 3. Evaluate (progress per object and per denoising step) and write the report
    settings = dict(model=model, quality=quality, solver=sampling.solver, steps=sampling.steps, guidance=sampling.guidance,
                    eta=sampling.eta, max_batch=max_batch, dtype=dtype_name(dt))
    report = evaluate(views, proto, predictor, out, seed=seed, limit=limit, lpips=lpips, device=str(dev),
                      settings=settings, save_images=save_images, progress=progress)
    typer.echo(format_summary(report))
    for note in report.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"wrote {out / 'results.json'}, results.csv, per_view.csv, contact_sheet.png")


def render_testset(
    out: OutOption,
    count: Annotated[int, typer.Option("--count", help="Number of held-out procedural objects.")] = 20,
    targets: Annotated[str, typer.Option("--targets", help="Camera changes from the input view.")] = "az:90,az:180,az:270,el:30,el:-30",
    size: Annotated[int, typer.Option("--size", help="Image side in pixels.")] = 256,
    backend: BackendOption = "auto",
    seed: SeedOption = 0,
    min_elevation: Annotated[float, typer.Option("--min-elevation", help="Lowest input-view elevation (deg).")] = 0.0,
    max_elevation: Annotated[float, typer.Option("--max-elevation", help="Highest input-view elevation (deg).")] = 30.0,
    min_parts: MinPartsOption = 3,
    max_parts: MaxPartsOption = 7,
    texture_probability: TextureProbabilityOption = 0.5,
    kind: KindOption = "primitives",
    progress: ProgressOption = True,
    threads: ThreadsOption = None,
) -> None:
    """Render a held-out test set: view 0 = input, then one view per camera change (for `eval nvs`)."""
    from ..data.objects import ProceduralConfig
    from ..eval.protocols import parse_targets
    from ..eval.testset import render_relative_testset
    from ._common import check_output_dir, fail

    changes = parse_targets(targets)
    if not isinstance(changes, tuple) or not changes or isinstance(changes[0], int):
        raise ValueError(f"--targets must be camera changes like 'az:90,el:30', got {targets!r}")
    check_output_dir(out)
    try:
        names = render_relative_testset(out, count, changes=changes, seed=seed, image_size=size, backend=backend,
                                        input_elevation=(min_elevation, max_elevation), progress=progress,
                                        procedural=ProceduralConfig(min_parts, max_parts, texture_probability=texture_probability,
                                                                    kind=kind))
    except RuntimeError as e:  # no working renderer backend here
        raise fail(str(e)) from None
    typer.echo(f"wrote {len(names)} objects to {out}; score with: zero123 eval nvs --data {out} --model M -o OUT")


def mesh3d(
    pred: Annotated[Path, typer.Option("--pred", help="Predicted mesh file (glb/obj/ply/...), or a folder of <object>/ folders.")],
    gt: Annotated[Path, typer.Option("--gt", help="Ground-truth mesh file, or a folder of <object>/ folders (e.g. GSO: <object>/meshes/model.obj).")],
    protocol: Annotated[str, typer.Option("--protocol", help="default (surface points) | syncdreamer-gso30 (points of 16 depth renders).")] = "default",
    normalize: Annotated[Optional[str], typer.Option("--normalize", help="gt (the ground truth's normalisation for both; default) | each | none.")] = None,
    align: Annotated[Optional[str], typer.Option("--align", help="none | icp (rigid ICP of the prediction onto the ground truth).")] = None,
    fscore_threshold: Annotated[Optional[float], typer.Option("--fscore-threshold", help="F-score distance tau in object-size units (0.05).")] = None,
    out: Annotated[Optional[Path], typer.Option("-o", "--out", help="Also write results.json here (folder mode: per object and means).")] = None,
    threads: ThreadsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Chamfer distance, volume IoU (64^3) and F-score of predicted meshes against ground truth."""
    import json

    from ..threed.metrics import evaluate_folders, evaluate_mesh, get_metric_protocol
    from ..utils.fileio import atomic_write
    from ._common import check_output_dir, option_names, print_json

    with option_names("normalize", "alignment", "fscore_threshold", "protocol"):
        proto = get_metric_protocol(protocol)
        changes = {k: v for k, v in (("normalize", normalize), ("alignment", align), ("fscore_threshold", fscore_threshold))
                   if v is not None}
        proto = proto.replace(**changes) if changes else proto
    if out is not None:
        check_output_dir(out)
    if pred.is_dir() or gt.is_dir():
        per_object, means = evaluate_folders(pred, gt, proto)
        result = {"protocol": proto.name, "objects": {k: v.as_dict() for k, v in per_object.items()}, "mean": means}
        line = (f"{len(per_object)} objects: Chamfer {means['chamfer']:.4f}  volume IoU {means['volume_iou']:.3f}  "
                f"F-score@{proto.fscore_threshold:g} {means['fscore']:.3f}")
    else:
        metrics = evaluate_mesh(pred, gt, proto)
        result = metrics.as_dict()
        line = (f"Chamfer {metrics.chamfer:.4f}  volume IoU {metrics.volume_iou:.3f}  F-score@{proto.fscore_threshold:g} "
                f"{metrics.fscore:.3f} (precision {metrics.precision:.3f}, recall {metrics.recall:.3f})")
    if out is not None:
        with atomic_write(Path(out) / "results.json", "w") as f:
            json.dump(result, f, indent=2)
    if as_json:
        print_json(result)
    else:
        typer.echo(line)


command(app, "nvs", nvs)
command(app, "render-testset", render_testset)
command(app, "3d", mesh3d)
