"""``zero123 export``: a training run's checkpoint -> a pipeline folder ``Zero123Pipeline.from_pretrained`` loads.

The U-Net gets the EMA weights by default (the original demo samples with EMA, docs/conventions.md, Training recipe);
cc_projection and, when it was trained, the image encoder get their trained weights; the VAE,
scheduler and a frozen encoder come from the run's ``base/`` folder.
"""

from __future__ import annotations

from pathlib import Path

from .checkpoint import COMPONENTS, checkpoint_dirs, latest_checkpoint, load_base, load_checkpoint


def export_run(
    run_dir: str | Path,
    out: str | Path,
    *,
    use_ema: bool = True,
    step: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the pipeline of ``run_dir``'s latest checkpoint (or the one at ``step``) to ``out``.

    Raises:
        FileNotFoundError: ``run_dir`` is not a run folder or has no checkpoint (at ``step``).
        FileExistsError: ``out`` exists and ``overwrite`` is false.
    """
    from ..pipeline import Zero123Pipeline
    from ..utils.fileio import atomic_directory

    run_dir, out = Path(run_dir), Path(out)
    _check_run_dir(run_dir)
    if step is None:
        ckpt = latest_checkpoint(run_dir)
    else:
        matches = [p for p in checkpoint_dirs(run_dir) if p.name == f"step-{step:07d}"]
        if not matches:
            have = [p.name for p in checkpoint_dirs(run_dir)]
            raise FileNotFoundError(f"step {step}: no such checkpoint in {run_dir}; available: {have}")
        ckpt = matches[0]
    if out.exists() and not overwrite:
        raise FileExistsError(f"out {str(out)!r} already exists; choose a new folder or pass overwrite")

    comps = load_base(run_dir / "base")
    st = load_checkpoint(ckpt)
    unet_state = st["unet_ema"] if use_ema else st["unet"]
    # EMA holds parameters only; buffers (if any) come from the live U-Net state
    full = dict(st["unet"])
    full.update(unet_state)
    comps["unet"].load_state_dict(full)
    comps["cc_projection"].load_state_dict(st["cc_projection"])
    if st["image_encoder"] is not None:
        comps["image_encoder"].load_state_dict(st["image_encoder"])
    pipe = Zero123Pipeline(**{k: comps[k] for k in COMPONENTS})
    with atomic_directory(out, overwrite=overwrite) as tmp:
        pipe.save_pretrained(tmp)
    return out


def _check_run_dir(run_dir: Path) -> None:
    """A clear error for each way ``run_dir`` is not (yet) exportable."""
    resume = f"continue it with `zero123 train --data DATA --config {run_dir / 'config.yaml'} --out {run_dir} --resume`"
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run_dir {str(run_dir)!r}: no such training run folder")
    if (run_dir / "model_index.json").is_file():
        raise ValueError(f"run_dir {str(run_dir)!r} is already a model folder (it has model_index.json): load it directly")
    if not (run_dir / "config.yaml").is_file():
        raise FileNotFoundError(f"run_dir {str(run_dir)!r} is not a training run folder (no config.yaml; `zero123 train --out` writes one)")
    if not (run_dir / "base").is_dir():
        raise ValueError(
            f"run_dir {str(run_dir)!r} is a training run that stopped before its first checkpoint (during the VAE "
            f"stage of a from-scratch run: its progress is in vae_stage/ when it was interrupted); {resume}, "
            "then export after the first checkpoint"
        )
    if latest_checkpoint(run_dir) is None:
        raise ValueError(
            f"run_dir {str(run_dir)!r} is a training run with no checkpoint yet (one is written every "
            f"train.checkpoint_every steps, at the end and on Ctrl-C); {resume}, then export"
        )
