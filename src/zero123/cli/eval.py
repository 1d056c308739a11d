"""``zero123 eval``: evaluation commands (``nvs``: novel-view synthesis metrics)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(name="eval", help="Evaluate models (novel-view PSNR / SSIM / LPIPS; 3D Chamfer / volume IoU / F-score).",
                  no_args_is_help=True)


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=2)


def _check_model_arg(model: str) -> None:
    """A missing local path fails here with a clear message; ``owner/name`` ids go to the loader."""
    from ..assets import BUNDLED_MODEL_NAME

    if model in ("identity", BUNDLED_MODEL_NAME) or Path(model).expanduser().exists():
        return
    if re.fullmatch(r"[\w.-]+/[\w.-]+", model) and not model.startswith((".", "/", "~")):
        return  # looks like a hub id; the loader decides (no network in tests)
    raise FileNotFoundError(f"--model: no such file or folder: {model}")


def nvs(
    data: Path = typer.Option(..., "--data", help="views_release folder: <object>/NNN.png + NNN.npy."),
    model: str = typer.Option(..., "--model", help="Pipeline folder, checkpoint, 'bundled', or 'identity' (baseline only)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder for results.json/csv and contact_sheet.png."),
    protocol: str = typer.Option("views-release", "--protocol", help="views-release | syncdreamer-gso30 | zero123-rtmv."),
    split: Optional[str] = typer.Option(None, "--split", help="val | train | all (default: the protocol's)."),
    targets: Optional[str] = typer.Option(
        None, "--targets", help="'others', view indices ('1-16') or camera changes ('az:90,az:180,el:30,el:-30')."
    ),
    input_view: Optional[int] = typer.Option(None, "--input-view", help="Conditioning view index (default: the protocol's)."),
    resolution: Optional[int] = typer.Option(None, "--resolution", help="Metric resolution in pixels (default: the protocol's)."),
    lpips_backbone: Optional[str] = typer.Option(None, "--lpips-backbone", help="vgg | alex | squeeze."),
    lpips: bool = typer.Option(True, "--lpips/--no-lpips", help="Compute LPIPS when the lpips package and weights exist."),
    steps: int = typer.Option(50, "--steps", help="DDIM steps (S; the original grid runs S-1)."),
    guidance: float = typer.Option(3.0, "--guidance", help="Classifier-free guidance scale."),
    eta: float = typer.Option(1.0, "--eta", help="DDIM eta."),
    seed: int = typer.Option(0, "--seed", help="Sampling seed (per object)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Evaluate only the first N objects."),
    max_batch: Optional[int] = typer.Option(None, "--max-batch", help="Largest U-Net batch (saves memory)."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N."),
    fp16: bool = typer.Option(False, "--fp16", help="Run the model in float16 (GPU only)."),
    save_images: bool = typer.Option(False, "--save-images", help="Also write every prediction as PNG."),
) -> None:
    """Score novel views predicted by MODEL (and, always, the identity baseline) on local data."""
    try:
        import torch

        from ..eval import PipelinePredictor, ViewsFolder, evaluate, format_summary, get_protocol, parse_targets

        # 1. Protocol with overrides. A folder written by `zero123 eval render-testset` carries its
        #    targets (testset.json): with the default protocol they become the defaults.
        proto = get_protocol(protocol)
        testset = Path(data) / "testset.json"
        if protocol == "views-release" and testset.is_file():
            import json

            meta = json.loads(testset.read_text())
            split = split if split is not None else "all"
            targets = targets if targets is not None else meta.get("targets")
        changes = {}
        if split is not None:
            changes["split"] = split
        if targets is not None:
            changes["targets"] = parse_targets(targets)
        if input_view is not None:
            changes["input_view"] = input_view
        if resolution is not None:
            changes["resolution"] = resolution
        if lpips_backbone is not None:
            changes["lpips_backbone"] = lpips_backbone
        proto = proto.replace(**changes) if changes else proto
        if steps < 1:
            raise ValueError(f"--steps must be >= 1, got {steps}")
        if limit is not None and limit < 1:
            raise ValueError(f"--limit must be >= 1, got {limit}")

        # 2. Data, checked before the model is loaded.
        views = ViewsFolder(data, split=proto.split)

        # 3. Model.
        _check_model_arg(model)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        predictor = None
        if model != "identity":
            from ..models import cc_projection as _cc  # noqa: F401  (diffusers must see the class to load it)
            from ..pipeline import Zero123Pipeline

            dtype = torch.float16 if fp16 else None
            if fp16 and not device.startswith("cuda"):
                raise ValueError("--fp16 needs a CUDA device")
            pipe = Zero123Pipeline.from_pretrained(str(Path(model).expanduser()) if Path(model).expanduser().exists() else model,
                                                   torch_dtype=dtype)
            pipe = pipe.to(device)
            pipe.set_progress_bar_config(disable=True)
            predictor = PipelinePredictor(pipe, steps, guidance, eta, max_batch, name="model")

        # 4. Evaluate and write.
        settings = dict(model=model, steps=steps, guidance=guidance, eta=eta, max_batch=max_batch, fp16=fp16)
        report = evaluate(
            views, proto, predictor, out, seed=seed, limit=limit, lpips=lpips, device=device,
            settings=settings, save_images=save_images,
        )
    except (ValueError, TypeError, FileNotFoundError) as exc:
        _fail(exc)
        return
    typer.echo(format_summary(report))
    for note in report.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"wrote {out / 'results.json'}, results.csv, per_view.csv, contact_sheet.png")


def render_testset(
    out: Path = typer.Option(..., "-o", "--out", help="Output folder (views_release layout)."),
    count: int = typer.Option(20, "--count", help="Number of held-out procedural objects."),
    targets: str = typer.Option("az:90,az:180,az:270,el:30,el:-30", "--targets", help="Camera changes from the input view."),
    size: int = typer.Option(256, "--size", help="Image side in pixels."),
    backend: str = typer.Option("auto", "--backend", help="gl | torch | auto."),
    seed: int = typer.Option(0, "--seed", help="Seed of objects, input cameras and lights."),
    min_elevation: float = typer.Option(0.0, "--min-elevation", help="Lowest input-view elevation (deg)."),
    max_elevation: float = typer.Option(30.0, "--max-elevation", help="Highest input-view elevation (deg)."),
    min_parts: int = typer.Option(3, "--min-parts", help="Fewest parts per object (use the training set's)."),
    max_parts: int = typer.Option(7, "--max-parts", help="Most parts per object (use the training set's)."),
    texture_probability: float = typer.Option(0.5, "--texture-probability", help="Chance a part is textured."),
) -> None:
    """Render a held-out test set: view 0 = input, then one view per camera change (for `eval nvs`)."""
    try:
        from ..data.objects import ProceduralConfig
        from ..eval.protocols import parse_targets
        from ..eval.testset import render_relative_testset

        changes = parse_targets(targets)
        if not isinstance(changes, tuple) or not changes or isinstance(changes[0], int):
            raise ValueError(f"--targets must be camera changes like 'az:90,el:30', got {targets!r}")
        names = render_relative_testset(out, count, changes=changes, seed=seed, image_size=size, backend=backend,
                                        input_elevation=(min_elevation, max_elevation),
                                        procedural=ProceduralConfig(min_parts, max_parts, texture_probability=texture_probability))
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as exc:
        _fail(exc)
        return
    typer.echo(f"wrote {len(names)} objects to {out}; score with: zero123 eval nvs --data {out} --model M -o OUT")


def mesh3d(
    pred: Path = typer.Option(..., "--pred", help="Predicted mesh file (glb/obj/ply/...), or a folder of <object>/ folders."),
    gt: Path = typer.Option(..., "--gt", help="Ground-truth mesh file, or a folder of <object>/ folders (e.g. GSO: <object>/meshes/model.obj)."),
    protocol: str = typer.Option("default", "--protocol", help="default (surface points) | syncdreamer-gso30 (points of 16 depth renders)."),
    normalize: Optional[str] = typer.Option(None, "--normalize", help="gt (the ground truth's normalisation for both) | each | none."),
    align: Optional[str] = typer.Option(None, "--align", help="none | icp (rigid ICP of the prediction onto the ground truth)."),
    fscore_threshold: Optional[float] = typer.Option(None, "--fscore-threshold", help="F-score distance tau (object-size units; 0.05)."),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="Also write results.json here (folder mode: per object and means)."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Chamfer distance, volume IoU (64^3) and F-score of predicted meshes against ground truth."""
    import json

    from ._common import cli_errors, option_names, print_json

    with cli_errors():
        from ..threed.metrics import evaluate_folders, evaluate_mesh, get_metric_protocol
        from ..utils.fileio import atomic_write

        with option_names("normalize", "alignment", "fscore_threshold", "protocol"):
            proto = get_metric_protocol(protocol)
            changes = {k: v for k, v in (("normalize", normalize), ("alignment", align), ("fscore_threshold", fscore_threshold))
                       if v is not None}
            proto = proto.replace(**changes) if changes else proto
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


app.command("nvs")(nvs)
app.command("render-testset")(render_testset)
app.command("3d")(mesh3d)
