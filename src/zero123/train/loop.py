"""The diffusion training loop of ``zero123 train`` on Hugging Face accelerate.

One call of :func:`train` does, in order:

1. Check the device and the run folder (fresh, or ``resume`` with a config that must match the
   saved one); nothing is written yet.
2. Open the data, checking every object.
3. Write ``RUN_DIR/config.yaml``.
4. Build the starting components (:mod:`.init`) into ``RUN_DIR/base``; from scratch, train the VAE
   first (:mod:`.vae_stage`; a signal keeps its progress in ``RUN_DIR/vae_stage`` for ``--resume``).
5. Load the base, cache the frozen VAE's latents (posterior mean and std), build the optimizer
   groups (U-Net lr, cc_projection and image encoder 10x) and EMA, restore the latest checkpoint.
6. Optimise the U-Net's target (noise or v) with linear warm-up then a constant rate, gradient
   accumulation and CFG dropout; log to TensorBoard, write sample grids, checkpoint every N steps,
   at the end and on SIGINT/SIGTERM (``docs/conventions.md``, "Training recipe").

All randomness of a step (VAE sample noise, diffusion noise, timesteps, dropout) comes from one
CPU ``torch.Generator`` per process whose state is checkpointed, and the data position is the step
counter, so ``--resume`` continues bit-for-bit the run that was stopped.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import resource
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..utils.progress import progress_display
from ..utils.quiet import no_loading_bars
from .checkpoint import (
    COMPONENTS,
    latest_checkpoint,
    load_base,
    load_checkpoint,
    save_base,
    save_checkpoint,
)
from .config import Config, ConfigError, config_differences
from .data import PairSampler, ViewSource, open_dataset
from .dropout import DropoutMasks, apply_cfg_dropout, dropout_masks
from .ema import EMA

logger = logging.getLogger("zero123.train")


@dataclass
class TrainResult:
    """What a call of :func:`train` did."""

    run_dir: Path
    step: int
    last_checkpoint: Path | None
    interrupted: bool
    final_loss: float
    samples_per_second: float
    skipped_views: int


class Denoiser(nn.Module):
    """The trained parts in one module (one DDP wrapper): cc_projection, U-Net and, when trained,
    the image encoder. ``forward`` returns the predicted noise ``(B, 4, h, w)``."""

    def __init__(self, unet, cc_projection, image_encoder, clip_preprocess, *, train_image_encoder: bool):
        super().__init__()
        self.unet = unet
        self.cc_projection = cc_projection
        self.train_image_encoder = train_image_encoder
        if train_image_encoder:
            self.image_encoder = image_encoder
        else:  # frozen: kept out of the module tree so DDP and the optimizer never see it
            object.__setattr__(self, "frozen_image_encoder", image_encoder)
        self._clip_preprocess = clip_preprocess

    def encode(self, cond_pixels: torch.Tensor) -> torch.Tensor:
        """Projected image embeddings ``(B, D)`` of condition images in [-1, 1], with the
        pipeline's CLIP preprocessing (docs/conventions.md, Conditioning)."""
        pixels = self._clip_preprocess(cond_pixels)
        if self.train_image_encoder:
            return self.image_encoder(pixel_values=pixels).image_embeds
        with torch.no_grad():
            return self.frozen_image_encoder(pixel_values=pixels).image_embeds

    def forward(self, noisy_latents, timesteps, concat_latents, pose, drop_clip, drop_concat, cond_pixels):
        image_embeds = self.encode(cond_pixels)
        masks = DropoutMasks(drop_clip=drop_clip, drop_concat=drop_concat)
        image_embeds, concat_latents = apply_cfg_dropout(image_embeds, concat_latents, masks)
        token = self.cc_projection(image_embeds, pose)  # (B, 1, C): T appended after the dropout
        x = torch.cat([noisy_latents, concat_latents.to(noisy_latents.dtype)], dim=1)
        return self.unet(x, timesteps, encoder_hidden_states=token.to(noisy_latents.dtype)).sample


def make_pipeline(components: dict):
    """A :class:`zero123.pipeline.Zero123Pipeline` around ``components`` (shared preprocessing)."""
    from ..pipeline import Zero123Pipeline

    return Zero123Pipeline(**{k: components[k] for k in COMPONENTS})


class _StopFlag:
    """SIGINT/SIGTERM set a flag; the loop checkpoints at the next step boundary and returns."""

    def __init__(self):
        self.signum: int | None = None
        self._old = {}

    def __enter__(self):
        for s in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[s] = signal.signal(s, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum, frame):
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: give up immediately
        self.signum = signum
        logger.warning("received signal %d: saving a checkpoint at the end of this step", signum)

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)


def _check_run_dir(run_dir: Path, config: Config, resume: bool) -> None:
    """Refuse a folder that holds another run (or, with ``resume``, a different config). A folder in
    which nothing was trained yet (no base model, VAE stage or checkpoint: a run that failed before
    its first step) is not a run: its config.yaml is simply replaced."""
    saved = run_dir / "config.yaml"
    started = (run_dir / "base").is_dir() or (run_dir / VAE_STAGE_DIR).is_dir() or latest_checkpoint(run_dir) is not None
    if resume:
        if not saved.is_file():
            raise FileNotFoundError(f"--resume: {run_dir} has no config.yaml; it is not a training run folder")
        diffs = config_differences(Config.load(saved), config) if started else []
        if diffs:
            raise ConfigError(
                f"--resume: the config differs from the one {run_dir} was trained with: "
                + "; ".join(diffs)
                + " (only train.max_steps, checkpoint/log/sample intervals and keep_last may change)"
            )
    elif started:
        raise FileExistsError(f"{run_dir} already holds a training run; pass --resume to continue it or choose a new --out")


def _match_resolution(comps: dict, config: Config) -> None:
    """The model's resolution (``vae.config.sample_size``) must be ``data.image_size``. From scratch
    the convolutional presets adapt (their sample sizes are set); a loaded model must match."""
    size = config.data.image_size
    vae, unet = comps["vae"], comps["unet"]
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    if config.model.init == "scratch":
        if size % factor:
            raise ConfigError(f"config key 'data.image_size' must be a multiple of the VAE factor {factor}, got {size}")
        vae.register_to_config(sample_size=size)
        unet.register_to_config(sample_size=size // factor)
    elif int(vae.config.sample_size) != size:
        raise ConfigError(
            f"config key 'data.image_size' is {size} but the model {config.model.init_path!r} works at "
            f"{vae.config.sample_size} px; set data.image_size: {vae.config.sample_size}"
        )


def _lr_lambda(warmup: int):
    return lambda step: 1.0 if warmup <= 0 else min(1.0, (step + 1) / warmup)


def train(
    data_dir: str | Path,
    config: Config,
    run_dir: str | Path,
    *,
    resume: bool = False,
    log=None,
    show_progress: bool = True,
    device: str = "auto",
) -> TrainResult:
    """Train a Zero123 model on a ``views_release`` folder into ``run_dir``; see the module docstring.

    ``device``: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"`` (under ``accelerate launch``
    each process takes its own GPU).
    """
    run_dir = Path(run_dir)
    # 1. Devices, then the run folder checked (nothing is written yet)
    accelerator = _accelerator(config.train, device)
    is_main = accelerator.is_main_process
    say = log or (lambda msg: accelerator.print(msg))
    if config.train.mixed_precision != "no" and accelerator.device.type != "cuda":
        say(f"note: train.mixed_precision={config.train.mixed_precision!r} needs a GPU; training in fp32")
    if is_main:
        _check_run_dir(run_dir, config, resume)
    # 2. The data, every object checked (clear errors for empty folders and unpaired .png/.npy files)
    source, sampler = _open_data(data_dir, config)
    # 3. Only now the run folder and its config.yaml
    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        config.save(run_dir / "config.yaml")
    accelerator.wait_for_everyone()
    progress = progress_display(show_progress and is_main, info=True)
    with progress, _StopFlag() as stop, no_loading_bars():
        # 4. Starting components -> RUN_DIR/base (from scratch the VAE stage runs first, resumably)
        if is_main and not (run_dir / "base").is_dir():
            if not _build_base(run_dir, config, source, accelerator.device, progress, say, stop):
                say(f"stopped by signal during the VAE stage; its progress is in {run_dir / VAE_STAGE_DIR}: continue with --resume")
                return TrainResult(run_dir, 0, None, True, float("nan"), 0.0, source.skipped)
        accelerator.wait_for_everyone()
        # 5. Trained parts, optimizer, EMA and random stream (from the latest checkpoint on --resume)
        run = _Run.start(run_dir, config, source, accelerator, resume, say, progress)
        # 6. Optimise until train.max_steps or a signal, logging, sampling and checkpointing on the way
        result = run.optimise(sampler, progress, stop)
    accelerator.wait_for_everyone()
    return result


#: Sub-folder of the run where an interrupted VAE stage keeps its progress.
VAE_STAGE_DIR = "vae_stage"


def _accelerator(tc, device: str):
    from accelerate import Accelerator

    from ..devices import resolve_device

    dev = resolve_device(device)
    if dev.type == "cuda" and dev.index is not None:
        raise ValueError(
            f"device {str(dev)!r}: training picks its GPUs through accelerate; choose one with "
            "CUDA_VISIBLE_DEVICES=N (or `accelerate launch`) and pass device 'cuda'"
        )
    on_gpu = dev.type == "cuda"
    return Accelerator(mixed_precision=tc.mixed_precision if on_gpu else "no", cpu=dev.type == "cpu")


def _open_data(data_dir, config: Config) -> tuple[ViewSource, PairSampler]:
    dataset = open_dataset(
        data_dir, split=config.data.split, image_size=config.data.image_size, seed=config.train.seed,
        camera_embedding=config.model.camera_embedding,
    )
    source = ViewSource(dataset, config.model.camera_embedding, use_cache=config.data.cache_latents)
    return source, PairSampler(source.num_views, config.train.seed)


def _build_base(run_dir: Path, config: Config, source: ViewSource, device, progress, say, stop) -> bool:
    """The starting components saved to ``RUN_DIR/base``; from scratch the VAE stage first (its
    progress kept in ``RUN_DIR/vae_stage`` on a signal). False when a signal stopped the VAE stage."""
    from .init import initial_components

    comps = initial_components(config.model, seed=config.train.seed)
    _match_resolution(comps, config)
    if config.model.init == "scratch" and not config.model.vae_path and config.vae_stage.enabled:
        from .vae_stage import train_vae

        state_dir = run_dir / VAE_STAGE_DIR
        vae_mse = train_vae(comps["vae"], source, config.vae_stage, seed=config.train.seed, device=device,
                            progress=progress, log=say, should_stop=lambda: stop.signum is not None, state_dir=state_dir)
        if vae_mse is None:
            return False
        comps["vae"].to("cpu")
        save_base(comps, run_dir / "base")
        shutil.rmtree(state_dir, ignore_errors=True)  # the base holds the finished VAE now
        return True
    save_base(comps, run_dir / "base")
    return True


@dataclass
class _Run:
    """Everything a diffusion run holds between steps: the run folder, the components, the
    DDP-wrapped trained parts, optimizer, schedule, EMA, the random stream and the step."""

    run_dir: Path
    config: Config
    source: ViewSource
    accelerator: object
    comps: dict
    model: nn.Module
    inner: nn.Module
    optimizer: torch.optim.Optimizer
    lr_sched: object
    ema: EMA
    gen: torch.Generator
    step: int
    writer: object
    say: object

    @classmethod
    def start(cls, run_dir: Path, config: Config, source: ViewSource, accelerator, resume: bool, say, progress) -> "_Run":
        """Load the base, move the frozen parts, cache latents, build the optimizer groups
        (``docs/conventions.md``, "Training recipe") and EMA, and restore the latest checkpoint."""
        tc, oc = config.train, config.optim
        comps = load_base(run_dir / "base")
        vae, unet, cc, encoder = (comps[k] for k in ("vae", "unet", "cc_projection", "image_encoder"))
        device = accelerator.device
        vae.requires_grad_(False).eval().to(device)
        if not tc.train_image_encoder:
            encoder.requires_grad_(False).eval().to(device)
        if tc.gradient_checkpointing:
            unet.enable_gradient_checkpointing()
            if tc.train_image_encoder:
                encoder.gradient_checkpointing_enable()
        if config.data.cache_latents:
            source.cache_latents(vae, device=device, progress=progress if accelerator.is_main_process else None)
        model = Denoiser(unet, cc, encoder, make_pipeline(comps).clip_preprocess, train_image_encoder=tc.train_image_encoder)
        groups = [
            {"params": list(unet.parameters()), "lr": oc.lr},
            {"params": list(cc.parameters()), "lr": oc.lr * oc.cc_projection_lr_scale},
        ]
        if tc.train_image_encoder:
            groups.append({"params": list(encoder.parameters()), "lr": oc.lr * oc.image_encoder_lr_scale})
        optimizer = torch.optim.AdamW(groups, betas=oc.betas, weight_decay=oc.weight_decay, eps=oc.eps)
        lr_sched = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(oc.warmup_steps))
        ema = EMA(unet, tc.ema_decay)
        gen = torch.Generator().manual_seed(tc.seed * 1009 + accelerator.process_index)
        ckpt = latest_checkpoint(run_dir) if resume else None
        step = _restore(ckpt, unet, cc, encoder if tc.train_image_encoder else None, optimizer, lr_sched, ema, gen,
                        accelerator) if ckpt is not None else 0
        if ckpt is not None:
            say(f"resumed from {ckpt} at step {step}")
        model, optimizer = accelerator.prepare(model, optimizer)
        writer = None
        if accelerator.is_main_process:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(run_dir / "logs"))
        return cls(run_dir, config, source, accelerator, comps, model, accelerator.unwrap_model(model), optimizer,
                   lr_sched, ema, gen, step, writer, say)

    def optimise(self, sampler: PairSampler, progress, stop: "_StopFlag") -> TrainResult:
        """The loop: steps until ``train.max_steps`` or a signal; returns the :class:`TrainResult`."""
        tc, acc = self.config.train, self.accelerator
        task = progress.add_task("training", total=tc.max_steps, completed=self.step)
        meter = _Meter(tc.batch_size * tc.grad_accum * acc.num_processes)
        last_ckpt, interrupted = None, False
        self.model.train()
        while self.step < tc.max_steps:
            # 1. One optimizer step over grad_accum micro-batches
            losses = self._optimizer_step(sampler)
            meter.add(losses)
            progress.update(task, advance=1, info=f"loss {losses[-1]:.4f}")
            # 2. Logs and sample grids
            if self.step % tc.log_every == 0 or self.step == tc.max_steps:
                self._log(meter, progress)
            if tc.sample_every and self.step % tc.sample_every == 0 and self.config.data.num_sample_pairs:
                if acc.is_main_process:
                    _log_samples(self.run_dir, self.step, self.comps, self.inner, self.ema, self.source, sampler,
                                 self.config, self.writer)
                acc.wait_for_everyone()
            # 3. Checkpoint on schedule, at the end and when any process got a signal
            stop_now = self._stop_requested(stop)
            if self.step % tc.checkpoint_every == 0 or self.step == tc.max_steps or stop_now:
                last_ckpt = self.checkpoint() or last_ckpt
            if stop_now:
                interrupted = True
                self.say(f"stopped by signal at step {self.step}; checkpoint written, continue with --resume")
                break
        if self.writer is not None:
            self.writer.close()
        return TrainResult(self.run_dir, self.step, last_ckpt or latest_checkpoint(self.run_dir), interrupted,
                           meter.final_loss, meter.rate, self.source.skipped)

    def _optimizer_step(self, sampler: PairSampler) -> list[float]:
        """One AdamW step over ``grad_accum`` micro-batches; returns the micro-batch losses."""
        tc, acc = self.config.train, self.accelerator
        world, B, accum = acc.num_processes, tc.batch_size, tc.grad_accum
        vae, noise_sched = self.comps["vae"], self.comps["scheduler"]
        scaling = float(vae.config.scaling_factor)
        losses = []
        for micro in range(accum):
            base_k = ((self.step * accum + micro) * world + acc.process_index) * B
            batch = self.source.batch(sampler, list(range(base_k, base_k + B)))
            loss = _micro_step(self.model, batch, vae, noise_sched, scaling, self.gen, tc, acc.device)
            ctx = acc.no_sync(self.model) if micro != accum - 1 and world > 1 else contextlib.nullcontext()
            with ctx:
                acc.backward(loss / accum)
            losses.append(loss.item())
        if self.config.optim.max_grad_norm is not None:
            acc.clip_grad_norm_(self.model.parameters(), self.config.optim.max_grad_norm)
        self.optimizer.step()
        self.lr_sched.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.ema.update(self.inner.unet)
        self.step += 1
        return losses

    def _log(self, meter: "_Meter", progress) -> None:
        tc = self.config.train
        loss, rate = meter.flush()
        lr = self.lr_sched.get_last_lr()[0]
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if self.writer is not None:
            self.writer.add_scalar("train/loss", loss, self.step)
            self.writer.add_scalar("train/lr", lr, self.step)
            self.writer.add_scalar("train/samples_per_second", rate, self.step)
        if self.accelerator.is_main_process:
            progress.console.print(
                f"step {self.step}/{tc.max_steps}  loss {loss:.4f}  lr {lr:.2e}  "
                f"{rate:.1f} samples/s  peak RSS {rss:.0f} MiB  skipped {self.source.skipped}",
                soft_wrap=True,
            )

    def _stop_requested(self, stop: "_StopFlag") -> bool:
        stop_now = stop.signum is not None
        if self.accelerator.num_processes > 1:
            flag = torch.tensor([1.0 if stop_now else 0.0], device=self.accelerator.device)
            stop_now = bool(self.accelerator.reduce(flag, reduction="sum").item() > 0)
        return stop_now

    def checkpoint(self) -> Path | None:
        """Write ``checkpoints/step-N`` (main process; every process's random stream gathered)."""
        from accelerate.utils import gather_object

        acc, tc = self.accelerator, self.config.train
        states = gather_object([self.gen.get_state()]) if acc.num_processes > 1 else [self.gen.get_state()]
        path = None
        if acc.is_main_process:
            path = save_checkpoint(
                self.run_dir, self.step, unet=self.inner.unet, cc_projection=self.inner.cc_projection,
                image_encoder=self.comps["image_encoder"] if tc.train_image_encoder else None,
                ema_state=self.ema.state_dict(), ema_num_updates=self.ema.num_updates,
                optimizer_state=self.optimizer.state_dict(), lr_scheduler_state=self.lr_sched.state_dict(),
                rng_states=states, keep_last=tc.keep_last, extra={"skipped_views": self.source.skipped},
            )
        acc.wait_for_everyone()
        return path


def _restore(ckpt: Path, unet, cc, encoder, optimizer, lr_sched, ema: EMA, gen: torch.Generator, accelerator) -> int:
    """Load a checkpoint into the run's objects; returns its step."""
    st = load_checkpoint(ckpt)
    unet.load_state_dict(st["unet"])
    cc.load_state_dict(st["cc_projection"])
    if encoder is not None:
        encoder.load_state_dict(st["image_encoder"])
    optimizer.load_state_dict(st["optimizer"])
    lr_sched.load_state_dict(st["lr_scheduler"])
    ema.load_state_dict(st["unet_ema"], st["state"]["ema_num_updates"])
    rng = st["rng"]
    if len(rng) != accelerator.num_processes:
        raise ValueError(f"--resume: {ckpt} was written by {len(rng)} processes, now {accelerator.num_processes}")
    gen.set_state(rng[accelerator.process_index])
    return int(st["state"]["step"])


class _Meter:
    """Mean loss and samples/s since the last :meth:`flush` (what the log lines report)."""

    def __init__(self, samples_per_step: int):
        self.per_step = samples_per_step
        self.losses: list[float] = []
        self.t0, self.steps = time.perf_counter(), 0
        self.final_loss, self.rate = float("nan"), 0.0

    def add(self, micro_losses: list[float]) -> None:
        self.losses += micro_losses
        self.steps += 1

    def flush(self) -> tuple[float, float]:
        dt = time.perf_counter() - self.t0
        self.rate = self.steps * self.per_step / max(dt, 1e-9)
        self.final_loss = sum(self.losses) / len(self.losses)
        self.losses, self.t0, self.steps = [], time.perf_counter(), 0
        return self.final_loss, self.rate


def _micro_step(model, batch, vae, noise_sched, scaling, gen, tc, device) -> torch.Tensor:
    """Loss of one micro-batch: MSE between the U-Net output and its target, the noise
    (docs/conventions.md, Sampling) or v (``model.prediction_type``), optionally Min-SNR weighted
    (``train.snr_gamma``)."""
    B = batch.pose.shape[0]
    with torch.no_grad():
        cond_pixels = batch.cond_pixels.to(device)
        if batch.target_latent_mean is not None:  # cached: sample() == mean + std * N(0, I)
            mean = batch.target_latent_mean
            latents = (mean + batch.target_latent_std * torch.randn(mean.shape, generator=gen)) * scaling
            concat = batch.cond_latent_mode
        else:
            dist = vae.encode(batch.target_pixels.to(device, vae.dtype)).latent_dist
            latents = (dist.mean.cpu().float() + dist.std.cpu().float() * torch.randn(dist.mean.shape, generator=gen)) * scaling
            concat = vae.encode(cond_pixels.to(vae.dtype)).latent_dist.mode().float().cpu()
        noise = torch.randn(latents.shape, generator=gen)
        timesteps = torch.randint(0, noise_sched.config.num_train_timesteps, (B,), generator=gen)
        masks = dropout_masks(torch.rand(B, generator=gen), tc.drop_clip_only, tc.drop_both, tc.drop_concat_only)
        noisy = noise_sched.add_noise(latents, noise, timesteps)
    out = model(
        noisy.to(device), timesteps.to(device), concat.to(device), batch.pose.to(device),
        masks.drop_clip.to(device), masks.drop_concat.to(device), cond_pixels,
    )
    kind = noise_sched.config.prediction_type
    target = noise if kind == "epsilon" else noise_sched.get_velocity(latents, noise, timesteps)
    per_sample = (out.float() - target.to(device)).pow(2).mean(dim=(1, 2, 3))
    if tc.snr_gamma is None:
        return per_sample.mean()
    return (per_sample * min_snr_weights(noise_sched.alphas_cumprod, timesteps, tc.snr_gamma, kind).to(device)).mean()


def min_snr_weights(alphas_cumprod: torch.Tensor, timesteps: torch.Tensor, gamma: float,
                    prediction_type: str = "epsilon") -> torch.Tensor:
    """``(B,)`` Min-SNR-gamma weights (Hang et al. 2023), ``SNR(t) = a_t / (1 - a_t)`` with
    ``a = alphas_cumprod``: ``min(SNR, gamma) / SNR`` for an epsilon loss (1 at noisy steps, below 1
    at nearly clean ones), ``min(SNR, gamma) / (SNR + 1)`` for a v loss (the same weight on the
    x0 error)."""
    a = alphas_cumprod.double()[timesteps.long().cpu()]
    snr = a / (1.0 - a)
    if prediction_type == "epsilon":
        return (snr.clamp(max=gamma) / snr).float()
    if prediction_type == "v_prediction":
        return (snr.clamp(max=gamma) / (snr + 1.0)).float()
    raise ValueError(f"prediction_type must be 'epsilon' or 'v_prediction', got {prediction_type!r}")


def _log_samples(run_dir, step, comps, inner, ema, source, sampler, config, writer) -> None:
    """Generate with the EMA weights for a few fixed pairs; save a grid PNG and log it."""
    import numpy as np
    from PIL import Image

    from ..camera import RelativeCamera, elevation_deg_from_world_to_cam
    from ..utils.fileio import atomic_save_image
    from ..utils.grid import contact_sheet

    unet = copy.deepcopy(inner.unet).eval()
    ema.copy_to(unet)
    parts = dict(comps, unet=unet, cc_projection=inner.cc_projection)
    parts["image_encoder"] = inner.image_encoder if inner.train_image_encoder else inner.frozen_image_encoder
    pipe = make_pipeline(parts)
    pipe.set_progress_bar_config(disable=True)
    to_pil = lambda x: Image.fromarray(((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy())
    rows = []
    was_training = inner.training
    inner.eval()
    try:
        for i in range(config.data.num_sample_pairs):
            k = 10**9 + i
            o, c, t = sampler(k)
            imgs = source.images([(o, c), (o, t)])
            if imgs is None:
                continue
            cam = RelativeCamera.from_world_to_cam(source.world_to_cam(o, c), source.world_to_cam(o, t))
            kw = {}
            if config.model.camera_embedding == "cond_polar":
                kw["cond_elevation"] = elevation_deg_from_world_to_cam(source.world_to_cam(o, c))
            with torch.no_grad():
                out = pipe(to_pil(imgs[0]), [cam], num_inference_steps=config.train.sample_steps,
                           guidance_scale=config.train.sample_guidance,
                           generator=torch.Generator().manual_seed(i), output_type="pil", **kw).images[0]
            rows.append([to_pil(imgs[0]), to_pil(imgs[1]), out])
    finally:
        inner.train(was_training)
    if not rows:
        return
    sheet = contact_sheet(rows, col_labels=["condition", "target", "prediction"])
    atomic_save_image(sheet, run_dir / "samples" / f"step-{step:07d}.png")
    if writer is not None:
        writer.add_image("samples", np.asarray(sheet), step, dataformats="HWC")
