"""``zero123 export``: a training run -> a pipeline folder (EMA weights by default)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def export(
    run_dir: Path = typer.Argument(..., help="Run folder written by `zero123 train`."),
    out: Path = typer.Argument(..., help="Pipeline folder to write (loads with Zero123Pipeline.from_pretrained)."),
    ema: bool = typer.Option(True, "--ema/--no-ema", help="Use the EMA U-Net weights (default) or the raw ones."),
    step: Optional[int] = typer.Option(None, "--step", help="Export this checkpoint step instead of the latest."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT if it exists."),
) -> None:
    """Export a trained model as a pipeline folder."""
    from ..train.export import export_run

    try:
        path = export_run(run_dir, out, use_ema=ema, step=step, overwrite=overwrite)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2)
    typer.echo(f"exported {run_dir} -> {path}")
