"""``zero123 train``: train a Zero123 model on a ``views_release`` folder (see zero123.train.loop)."""

from __future__ import annotations

from pathlib import Path

import typer


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=2)


def train(
    data: Path = typer.Option(..., "--data", help="views_release folder: <object>/NNN.png + NNN.npy (+ valid_paths.json)."),
    config: Path = typer.Option(..., "--config", help="YAML config (see configs/*.yaml); saved into RUN_DIR."),
    out: Path = typer.Option(..., "--out", help="Run folder: config, checkpoints, TensorBoard logs, sample grids."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its latest checkpoint."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar."),
) -> None:
    """Train (or fine-tune) a Zero123 model; SIGINT/SIGTERM save a checkpoint before exiting.

    Multi-process / multi-GPU: ``accelerate launch --num_processes N $(which zero123) train ...``.
    """
    import logging
    import os

    from rich.logging import RichHandler

    from ..train.config import Config
    from ..train.loop import train as run_training

    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[RichHandler(show_path=False)])
    try:
        cfg = Config.load(config)
        result = run_training(data, cfg, out, resume=resume, show_progress=progress)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError) as e:
        _fail(e)
    if int(os.environ.get("RANK", "0")) != 0:
        return
    if result.interrupted:
        typer.echo(f"interrupted at step {result.step}; checkpoint {result.last_checkpoint}")
        raise typer.Exit(code=130)
    typer.echo(
        f"done: step {result.step}, loss {result.final_loss:.4f}, {result.samples_per_second:.1f} samples/s, "
        f"checkpoint {result.last_checkpoint}"
    )
