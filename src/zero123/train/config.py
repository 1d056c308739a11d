"""Training configuration: nested dataclasses, one per concern, saved as YAML into the run folder.

Every hyperparameter lives here (issue 5 item 1). A YAML file maps section -> key -> value;
an unknown section or key is an error naming it, and each ``__post_init__`` checks its values and
names the offending key (``train.batch_size``), so a typo never silently falls back to a default.
Defaults follow docs/conventions.md, Training recipe (AdamW 0.9/0.999, wd 0.01, 10x lr for cc_projection, 100-step
warm-up, EMA 0.9999) and section 2 (CFG dropout 5/5/5 %).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints

InitFrom = Literal["scratch", "zero123", "sd_image_variations"]
MixedPrecision = Literal["no", "fp16", "bf16"]


class ConfigError(ValueError):
    """A config file or value is invalid; the message names the key."""


def _check(cond: bool, key: str, rule: str, value: Any) -> None:
    if not cond:
        raise ConfigError(f"config key {key!r} {rule}, got {value!r}")


@dataclass
class ModelConfig:
    """What to train and where its weights start.

    ``init``: ``scratch`` builds ``preset`` with random weights (a VAE stage runs first unless
    ``vae_path`` names a trained VAE folder); ``zero123`` loads ``init_path`` with
    ``Zero123Pipeline.from_pretrained``; ``sd_image_variations`` loads a Stable-Diffusion-image-
    variations-style folder and widens ``conv_in`` from 4 to 8 channels (docs/conventions.md, Training recipe).
    """

    init: InitFrom = "scratch"
    preset: str = "tiny"
    init_path: str | None = None
    vae_path: str | None = None
    camera_embedding: Literal["relative_radius", "cond_polar"] = "relative_radius"
    #: What the U-Net learns to predict, saved in the model's scheduler config: ``epsilon`` (the
    #: released checkpoints, docs/conventions.md, Sampling) or ``v_prediction`` (``v = sqrt(a) eps - sqrt(1-a) x0``,
    #: whose high-noise steps, where the shape is decided, carry a usable signal from the start).
    prediction_type: Literal["epsilon", "v_prediction"] = "epsilon"
    #: Per-component constructor overrides for ``build_components`` (scratch only).
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self):
        _check(self.init in get_args(InitFrom), "model.init", f"must be one of {get_args(InitFrom)}", self.init)
        _check(
            self.camera_embedding in ("relative_radius", "cond_polar"),
            "model.camera_embedding", "must be 'relative_radius' or 'cond_polar'", self.camera_embedding,
        )
        _check(self.prediction_type in ("epsilon", "v_prediction"), "model.prediction_type",
               "must be 'epsilon' or 'v_prediction'", self.prediction_type)
        if self.init != "scratch":
            _check(bool(self.init_path), "model.init_path", f"is required when model.init is {self.init!r}", self.init_path)
        _check(isinstance(self.overrides, dict), "model.overrides", "must be a mapping of component -> kwargs", self.overrides)


@dataclass
class DataConfig:
    """How training pairs are read (docs/conventions.md, Dataset layout)."""

    image_size: int = 64
    split: Literal["train", "all"] = "train"
    #: Encode every view with the frozen VAE once and keep latents (posterior mean and std) and the
    #: 8-bit pixels in memory. Ignored (with a note) when the VAE would not be frozen.
    cache_latents: bool = True
    #: Number of validation pairs drawn for the sample grids.
    num_sample_pairs: int = 4

    def __post_init__(self):
        _check(isinstance(self.image_size, int) and self.image_size >= 8, "data.image_size", "must be an int >= 8", self.image_size)
        _check(self.split in ("train", "all"), "data.split", "must be 'train' or 'all'", self.split)
        _check(isinstance(self.num_sample_pairs, int) and self.num_sample_pairs >= 0, "data.num_sample_pairs", "must be an int >= 0", self.num_sample_pairs)


@dataclass
class VAEStageConfig:
    """Training a small VAE from scratch before the diffusion stage (reconstruction + small KL)."""

    enabled: bool = True
    steps: int = 200
    batch_size: int = 16
    lr: float = 1e-3
    kl_weight: float = 1e-6
    #: weight of an extra MSE on the chroma part (pixel minus its RGB mean): without it a small
    #: VAE on mostly-white renders learns luminance first and stays nearly grey for 1000s of steps
    chroma_weight: float = 0.0
    log_every: int = 50

    def __post_init__(self):
        _check(self.chroma_weight >= 0, "vae_stage.chroma_weight", "must be >= 0", self.chroma_weight)
        _check(isinstance(self.steps, int) and self.steps >= 0, "vae_stage.steps", "must be an int >= 0", self.steps)
        _check(isinstance(self.batch_size, int) and self.batch_size >= 1, "vae_stage.batch_size", "must be an int >= 1", self.batch_size)
        _check(self.lr > 0, "vae_stage.lr", "must be > 0", self.lr)
        _check(self.kl_weight >= 0, "vae_stage.kl_weight", "must be >= 0", self.kl_weight)
        _check(isinstance(self.log_every, int) and self.log_every >= 1, "vae_stage.log_every", "must be an int >= 1", self.log_every)


@dataclass
class OptimConfig:
    """AdamW with a linear warm-up then a constant rate (docs/conventions.md, Training recipe)."""

    lr: float = 1e-4
    #: cc_projection learns at ``lr * cc_projection_lr_scale`` (10x in the original).
    cc_projection_lr_scale: float = 10.0
    #: The image encoder, when trained, learns at ``lr * image_encoder_lr_scale``.
    image_encoder_lr_scale: float = 10.0
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.01
    eps: float = 1e-8
    warmup_steps: int = 100
    max_grad_norm: float | None = 1.0

    def __post_init__(self):
        self.betas = tuple(self.betas)
        _check(self.lr > 0, "optim.lr", "must be > 0", self.lr)
        _check(self.cc_projection_lr_scale > 0, "optim.cc_projection_lr_scale", "must be > 0", self.cc_projection_lr_scale)
        _check(self.image_encoder_lr_scale > 0, "optim.image_encoder_lr_scale", "must be > 0", self.image_encoder_lr_scale)
        _check(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "optim.betas", "must be two numbers in [0, 1)", self.betas)
        _check(self.weight_decay >= 0, "optim.weight_decay", "must be >= 0", self.weight_decay)
        _check(isinstance(self.warmup_steps, int) and self.warmup_steps >= 0, "optim.warmup_steps", "must be an int >= 0", self.warmup_steps)
        _check(self.max_grad_norm is None or self.max_grad_norm > 0, "optim.max_grad_norm", "must be > 0 or null", self.max_grad_norm)


@dataclass
class TrainConfig:
    """The diffusion stage: steps, batch, precision, EMA, CFG dropout, checkpoints, logging."""

    max_steps: int = 1000
    #: Per-process micro-batch; the effective batch is batch_size * grad_accum * num_processes.
    batch_size: int = 8
    grad_accum: int = 1
    seed: int = 0
    #: ``fp16``/``bf16`` only take effect on GPU; on CPU training runs fp32 (with a note).
    mixed_precision: MixedPrecision = "no"
    gradient_checkpointing: bool = False
    #: Train the image encoder jointly (required from scratch: no pretrained CLIP offline).
    train_image_encoder: bool = False
    ema_decay: float = 0.9999
    #: CFG dropout probabilities (docs/conventions.md, Conditioning): clip only, both, concat only.
    drop_clip_only: float = 0.05
    drop_both: float = 0.05
    drop_concat_only: float = 0.05
    #: Min-SNR-gamma loss weighting (Hang et al. 2023): each sample's noise MSE is scaled by
    #: ``min(SNR(t), gamma) / SNR(t)``, which caps the weight of the low-noise steps (fine texture)
    #: so the high-noise steps that decide shape get more of the gradient. ``null`` = the plain
    #: MSE of the released checkpoints (docs/conventions.md, Training recipe).
    snr_gamma: float | None = None
    checkpoint_every: int = 500
    keep_last: int = 3
    log_every: int = 20
    sample_every: int = 500
    sample_steps: int = 20
    sample_guidance: float = 3.0

    def __post_init__(self):
        for key in ("max_steps", "batch_size", "grad_accum", "checkpoint_every", "keep_last", "log_every", "sample_every", "sample_steps"):
            v = getattr(self, key)
            lo = 0 if key in ("sample_every",) else 1
            _check(isinstance(v, int) and not isinstance(v, bool) and v >= lo, f"train.{key}", f"must be an int >= {lo}", v)
        _check(self.mixed_precision in get_args(MixedPrecision), "train.mixed_precision", f"must be one of {get_args(MixedPrecision)}", self.mixed_precision)
        _check(0.0 <= self.ema_decay < 1.0, "train.ema_decay", "must be in [0, 1)", self.ema_decay)
        _check(self.snr_gamma is None or (isinstance(self.snr_gamma, (int, float)) and not isinstance(self.snr_gamma, bool)
                                          and self.snr_gamma > 0), "train.snr_gamma", "must be a number > 0 or null", self.snr_gamma)
        for key in ("drop_clip_only", "drop_both", "drop_concat_only"):
            _check(0.0 <= getattr(self, key) <= 1.0, f"train.{key}", "must be a probability in [0, 1]", getattr(self, key))
        total = self.drop_clip_only + self.drop_both + self.drop_concat_only
        _check(total <= 1.0, "train.drop_*", "probabilities must sum to <= 1", total)


@dataclass
class Config:
    """The whole training config (one YAML file, one section per field)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    vae_stage: VAEStageConfig = field(default_factory=VAEStageConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        if self.model.init == "scratch" and not self.train.train_image_encoder:
            raise ConfigError(
                "config key 'train.train_image_encoder' must be true when model.init is 'scratch' "
                "(there is no pretrained image encoder offline; a random frozen one carries no information)"
            )

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["optim"]["betas"] = list(self.optim.betas)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> "Config":
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: the top level must be a mapping of sections, got {type(data).__name__}")
        sections = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(sections))
        if unknown:
            raise ConfigError(f"{source}: unknown config section(s) {unknown}; known sections are {sorted(sections)}")
        hints = get_type_hints(cls)
        kwargs = {}
        for name, values in data.items():
            sub_cls = hints[name]
            values = values or {}
            if not isinstance(values, dict):
                raise ConfigError(f"{source}: section {name!r} must be a mapping, got {values!r}")
            known = {f.name for f in dataclasses.fields(sub_cls)}
            bad = sorted(set(values) - known)
            if bad:
                raise ConfigError(
                    f"{source}: unknown config key(s) {[f'{name}.{k}' for k in bad]}; "
                    f"known keys in {name!r} are {sorted(known)}"
                )
            try:
                kwargs[name] = sub_cls(**values)
            except TypeError as e:  # wrong types that the dataclass itself rejects
                raise ConfigError(f"{source}: section {name!r}: {e}") from None
        return cls(**kwargs)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Config":
        """Read a YAML (or JSON) config; unknown keys and bad values raise :class:`ConfigError`."""
        import yaml

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from None
        return cls.from_dict(data, source=str(path))

    def save(self, path: str | os.PathLike) -> None:
        """Write this config as YAML, atomically."""
        import yaml

        from ..utils.fileio import atomic_write

        with atomic_write(path, "w") as f:
            yaml.safe_dump(self.to_dict(), f, sort_keys=False)


#: Keys that may change when resuming a run (everything else must match the saved config).
RESUMABLE_CHANGES = frozenset(
    {"train.max_steps", "train.checkpoint_every", "train.keep_last", "train.log_every", "train.sample_every",
     "train.sample_steps", "train.sample_guidance", "data.num_sample_pairs"}
)


def config_differences(old: Config, new: Config) -> list[str]:
    """Dotted keys whose values differ between two configs, except :data:`RESUMABLE_CHANGES`."""
    a, b = old.to_dict(), new.to_dict()
    diffs = []
    for section in a:
        for key in a[section]:
            dotted = f"{section}.{key}"
            if dotted not in RESUMABLE_CHANGES and a[section][key] != b[section][key]:
                diffs.append(f"{dotted}: {a[section][key]!r} -> {b[section][key]!r}")
    return diffs
