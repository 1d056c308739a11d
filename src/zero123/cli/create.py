"""``zero123 create-random -o OUT``: a randomly initialised model folder for tests and development."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import JsonOption, ThreadsOption


def create_random_model(
    output_dir: str | Path,
    *,
    preset: str = "tiny",
    seed: int = 0,
    camera_embedding: str = "relative_radius",
    overwrite: bool = False,
) -> dict[str, Any]:
    """Build random components of ``preset`` and save them as a :class:`zero123.Zero123Pipeline`
    folder (safetensors), atomically: the folder appears complete or not at all."""
    from ..camera import CAMERA_EMBEDDINGS
    from ..models.factory import PRESETS, build_components
    from ..pipeline import Zero123Pipeline
    from ..utils.fileio import atomic_directory

    if preset not in PRESETS:
        raise ValueError(f"--preset must be one of {sorted(PRESETS)}, got {preset!r}")
    if camera_embedding not in CAMERA_EMBEDDINGS:
        raise ValueError(f"--camera-embedding must be one of {list(CAMERA_EMBEDDINGS)}, got {camera_embedding!r}")
    out = Path(output_dir)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; pass --overwrite to replace it")
    pipe = Zero123Pipeline(**build_components(preset, seed=seed, camera_embedding=camera_embedding))
    with atomic_directory(out, overwrite=overwrite) as tmp:
        pipe.save_pretrained(tmp)
    n_params = sum(p.numel() for m in (pipe.unet, pipe.vae, pipe.image_encoder, pipe.cc_projection) for p in m.parameters())
    return {"path": str(out), "preset": preset, "seed": seed, "camera_embedding": camera_embedding,
            "image_size": pipe.image_size, "parameters": n_params}


def create_random(
    out: Annotated[Path, typer.Option("-o", "--out", help="Folder to create.")],
    preset: Annotated[str, typer.Option(help="Architecture preset: tiny (tests), small, or full (the released ~1.2B-parameter layout).")] = "tiny",
    seed: Annotated[int, typer.Option(help="Seed of the random initialisation.")] = 0,
    camera_embedding: Annotated[str, typer.Option(help="relative_radius (Zero-1-to-3) or cond_polar (Stable Zero123).")] = "relative_radius",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing folder.")] = False,
    threads: ThreadsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write a randomly initialised Zero123 model folder (for tests and development, not for use)."""
    from ._common import progress_display

    with progress_display(not as_json) as bar:
        bar.add_task(f"building a random {preset} model", total=None)
        report = create_random_model(out, preset=preset, seed=seed, camera_embedding=camera_embedding, overwrite=overwrite)
    if as_json:
        from ._common import print_json

        print_json(report)
    else:
        typer.echo(f"wrote {report['preset']} random model ({report['parameters']:,} parameters) to {report['path']}")
