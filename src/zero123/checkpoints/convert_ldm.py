"""Original (Lightning / LDM) Zero-1-to-3 state dict -> our components (docs/conventions.md, Checkpoint formats).

The U-Net and VAE go through diffusers' own single-file converters
(:func:`diffusers.loaders.single_file_utils.convert_ldm_unet_checkpoint`,
:func:`~diffusers.loaders.single_file_utils.convert_ldm_vae_checkpoint`); they work on any
``in_channels``, so the 8-channel ``conv_in`` needs nothing special. transformers has no
OpenAI-CLIP -> HF converter in the library, so :func:`convert_openai_clip_vision` maps the vision
tower here, splitting the fused ``attn.in_proj_weight`` into q/k/v.

Configs are inferred from tensor shapes; the few hyper-parameters that shapes cannot show (number
of attention heads, GroupNorm groups, sample size) default to the released architecture
(docs/conventions.md, Network) and can be overridden with ``config_overrides``.

Every key is accounted for: the text-side CLIP leftovers and the diffusion buffers listed in
:data:`IGNORED_KEYS` / :data:`IGNORED_PREFIXES` are ignored on purpose; the U-Net copy not chosen
(EMA or raw) is ignored; anything else left over, missing or of the wrong shape is an error naming it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import torch

from .statedict import StateDict

UNET_PREFIX = "model.diffusion_model."
EMA_PREFIX = "model_ema."
VAE_PREFIX = "first_stage_model."
CLIP_VISUAL_PREFIX = "cond_stage_model.model.visual."
CC_PROJECTION_PREFIX = "cc_projection."

#: Sentinel key of the original layout (the U-Net's first conv; [320, 8, 3, 3] in zero123).
SENTINEL_KEY = UNET_PREFIX + "input_blocks.0.0.weight"

#: Diffusion buffers of ``LatentDiffusion`` (ldm/models/diffusion/ddpm.py ``register_schedule``)
#: and LitEma's counters: recomputed by our scheduler, ignored knowingly.
IGNORED_KEYS: frozenset[str] = frozenset(
    {
        "betas",
        "alphas_cumprod",
        "alphas_cumprod_prev",
        "sqrt_alphas_cumprod",
        "sqrt_one_minus_alphas_cumprod",
        "log_one_minus_alphas_cumprod",
        "sqrt_recip_alphas_cumprod",
        "sqrt_recipm1_alphas_cumprod",
        "posterior_variance",
        "posterior_log_variance_clipped",
        "posterior_mean_coef1",
        "posterior_mean_coef2",
        "logvar",
        "lvlb_weights",
        "scale_factor",  # read for the VAE's scaling_factor
        "cond_ids",
        "model_ema.decay",
        "model_ema.num_updates",
        # FrozenCLIPImageEmbedder's normalisation constants (recomputed in the pipeline, docs/conventions.md, Conditioning)
        "cond_stage_model.mean",
        "cond_stage_model.std",
    }
)
#: Text side of the OpenAI CLIP model kept inside ``cond_stage_model`` (unused by zero123).
IGNORED_PREFIXES: tuple[str, ...] = (
    "cond_stage_model.model.transformer.",
    "cond_stage_model.model.token_embedding.",
    "cond_stage_model.model.positional_embedding",
    "cond_stage_model.model.ln_final.",
    "cond_stage_model.model.text_projection",
    "cond_stage_model.model.logit_scale",
)

#: Defaults for what tensor shapes cannot tell (docs/conventions.md, Network).
UNET_DEFAULTS: dict[str, Any] = dict(sample_size=32, attention_head_dim=8, norm_num_groups=32)
VAE_DEFAULTS: dict[str, Any] = dict(sample_size=256, norm_num_groups=32, scaling_factor=0.18215)
CLIP_DEFAULTS: dict[str, Any] = dict(hidden_act="quick_gelu", layer_norm_eps=1e-5)


@dataclass
class ConvertedComponent:
    """One component: the constructor config and its state dict in our (diffusers/HF) naming."""

    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]


@dataclass
class ConvertedLDM:
    unet: ConvertedComponent
    vae: ConvertedComponent
    image_encoder: ConvertedComponent
    cc_projection: ConvertedComponent
    used_ema: bool
    has_ema: bool
    ignored: list[str] = field(default_factory=list)


def is_ignored(key: str) -> bool:
    return key in IGNORED_KEYS or key.startswith(IGNORED_PREFIXES)


def flat_ema_key(key: str) -> str:
    """LitEma's name for a U-Net parameter: ``model.diffusion_model.input_blocks.0.0.weight`` ->
    ``model_ema.diffusion_modelinput_blocks00weight`` (the dots after ``model.`` removed)."""
    return EMA_PREFIX + "".join(key.split(".")[1:])


def check_zero123_ldm(sd: StateDict, source: str) -> None:
    """Raise ``ValueError`` unless ``sd`` is an original-layout zero123 state dict."""
    if SENTINEL_KEY not in sd:
        some = ", ".join(sorted(sd.keys())[:5])
        raise ValueError(
            f"{source}: unknown checkpoint format: no {SENTINEL_KEY!r} key (not an original LDM/Lightning "
            f"zero123 checkpoint); first keys: {some or '(none)'}"
        )
    in_ch = sd.shape(SENTINEL_KEY)[1]
    if in_ch != 8 or CC_PROJECTION_PREFIX + "weight" not in sd:
        raise ValueError(
            f"{source}: not a zero123 checkpoint: {SENTINEL_KEY} has {in_ch} input channels (zero123 has 8: "
            f"noisy latent + condition latent) and cc_projection.weight is "
            f"{'present' if CC_PROJECTION_PREFIX + 'weight' in sd else 'missing'}; this looks like a plain "
            f"Stable Diffusion checkpoint"
        )


def has_ema_weights(sd: StateDict) -> bool:
    return flat_ema_key(SENTINEL_KEY) in sd


# ----------------------------------------------------------------------------------------------
# config inference


def _count(keys, pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in keys if (m := rx.match(k))})


def infer_unet_config(unet_sd: dict[str, torch.Tensor]) -> dict[str, Any]:
    """UNet2DConditionModel config from LDM U-Net keys (without the ``model.diffusion_model.`` prefix)."""
    keys = list(unet_sd)
    n_in = _count(keys, r"input_blocks\.(\d+)\.")
    downs = [i for i in range(n_in) if f"input_blocks.{i}.0.op.weight" in unet_sd]
    levels = len(downs) + 1
    layers = (n_in - 1 - len(downs)) // levels
    channels, attn = [], []
    for lvl in range(levels):
        first = 1 + lvl * (layers + 1)
        channels.append(unet_sd[f"input_blocks.{first}.0.out_layers.3.weight"].shape[0])
        attn.append(f"input_blocks.{first}.1.proj_in.weight" in unet_sd)
    k_key = next((k for k in keys if k.endswith("transformer_blocks.0.attn2.to_k.weight")), None)
    proj_in = next((k for k in keys if k.endswith(".proj_in.weight")), None)
    depth = _count([k for k in keys if k.startswith("middle_block.1.")], r"middle_block\.1\.transformer_blocks\.(\d+)\.")
    return dict(
        in_channels=unet_sd["input_blocks.0.0.weight"].shape[1],
        out_channels=unet_sd["out.2.weight"].shape[0],
        block_out_channels=tuple(channels),
        layers_per_block=layers,
        down_block_types=tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attn),
        up_block_types=tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attn)),
        cross_attention_dim=unet_sd[k_key].shape[1] if k_key else 768,
        use_linear_projection=bool(proj_in) and unet_sd[proj_in].ndim == 2,
        transformer_layers_per_block=max(depth, 1),
        **UNET_DEFAULTS,
    )


def infer_vae_config(vae_sd: dict[str, torch.Tensor]) -> dict[str, Any]:
    keys = list(vae_sd)
    n_levels = _count(keys, r"encoder\.down\.(\d+)\.")
    layers = _count([k for k in keys if k.startswith("encoder.down.0.")], r"encoder\.down\.0\.block\.(\d+)\.")
    channels = tuple(vae_sd[f"encoder.down.{i}.block.0.conv2.weight"].shape[0] for i in range(n_levels))
    return dict(
        in_channels=vae_sd["encoder.conv_in.weight"].shape[1],
        out_channels=vae_sd["decoder.conv_out.weight"].shape[0],
        down_block_types=("DownEncoderBlock2D",) * n_levels,
        up_block_types=("UpDecoderBlock2D",) * n_levels,
        block_out_channels=channels,
        layers_per_block=layers,
        latent_channels=vae_sd["post_quant_conv.weight"].shape[0],
        **VAE_DEFAULTS,
    )


def infer_clip_vision_config(visual: dict[str, torch.Tensor]) -> dict[str, Any]:
    width, _, patch, _ = visual["conv1.weight"].shape
    n_pos = visual["positional_embedding"].shape[0]
    grid = math.isqrt(n_pos - 1)
    return dict(
        hidden_size=width,
        intermediate_size=visual["transformer.resblocks.0.mlp.c_fc.weight"].shape[0],
        num_hidden_layers=_count(list(visual), r"transformer\.resblocks\.(\d+)\."),
        num_attention_heads=max(width // 64, 1),  # OpenAI CLIP: heads = width / 64
        image_size=grid * patch,
        patch_size=patch,
        projection_dim=visual["proj"].shape[1],
        **CLIP_DEFAULTS,
    )


# ----------------------------------------------------------------------------------------------
# weight conversion


def convert_openai_clip_vision(visual: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """OpenAI CLIP ``visual.*`` (prefix removed) -> ``CLIPVisionModelWithProjection`` state dict.

    The fused ``attn.in_proj_weight`` ``(3W, W)`` is split in q, k, v order; ``proj`` is stored
    ``(W, D)`` (``x @ proj``) and becomes ``visual_projection.weight`` ``(D, W)``.
    """
    out = {
        "vision_model.embeddings.class_embedding": visual["class_embedding"],
        "vision_model.embeddings.patch_embedding.weight": visual["conv1.weight"],
        "vision_model.embeddings.position_embedding.weight": visual["positional_embedding"],
        "vision_model.pre_layrnorm.weight": visual["ln_pre.weight"],
        "vision_model.pre_layrnorm.bias": visual["ln_pre.bias"],
        "vision_model.post_layernorm.weight": visual["ln_post.weight"],
        "vision_model.post_layernorm.bias": visual["ln_post.bias"],
        "visual_projection.weight": visual["proj"].t(),
    }
    renames = {
        "ln_1": "layer_norm1",
        "ln_2": "layer_norm2",
        "mlp.c_fc": "mlp.fc1",
        "mlp.c_proj": "mlp.fc2",
        "attn.out_proj": "self_attn.out_proj",
    }
    n_layers = _count(list(visual), r"transformer\.resblocks\.(\d+)\.")
    for i in range(n_layers):
        src, dst = f"transformer.resblocks.{i}.", f"vision_model.encoder.layers.{i}."
        for kind in ("weight", "bias"):
            q, k, v = visual[f"{src}attn.in_proj_{kind}"].chunk(3, dim=0)
            out[f"{dst}self_attn.q_proj.{kind}"] = q
            out[f"{dst}self_attn.k_proj.{kind}"] = k
            out[f"{dst}self_attn.v_proj.{kind}"] = v
            for old, new in renames.items():
                out[f"{dst}{new}.{kind}"] = visual[f"{src}{old}.{kind}"]
    return out


def _origin(t: torch.Tensor) -> int:
    return id(t._base) if t._base is not None else id(t)


def _unconsumed(source: dict[str, torch.Tensor], converted: dict[str, Any]) -> list[str]:
    used = {_origin(t) for t in converted.values() if isinstance(t, torch.Tensor)}
    return [k for k, t in source.items() if _origin(t) not in used]


def _check_none(converted: dict[str, Any], component: str) -> None:
    missing = sorted(k for k, v in converted.items() if v is None)
    if missing:
        raise ValueError(f"{component}: checkpoint is missing the tensors for {missing[:5]}" + (" ..." if len(missing) > 5 else ""))


def _take(sd: StateDict, prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: sd[k] for k in sd.keys() if k.startswith(prefix)}


def convert_ldm_state_dict(
    sd: StateDict,
    *,
    use_ema: bool = True,
    config_overrides: dict[str, dict[str, Any]] | None = None,
    source: str = "checkpoint",
) -> ConvertedLDM:
    """Convert an original-layout state dict (docs/conventions.md, Checkpoint formats) to component configs + state dicts.

    Raises:
        ValueError: not a zero123 checkpoint, or a key is left over / missing (named).
    """
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint

    check_zero123_ldm(sd, source)
    overrides = config_overrides or {}
    unknown = set(overrides) - {"unet", "vae", "image_encoder"}
    if unknown:
        raise ValueError(f"config_overrides: unknown component(s) {sorted(unknown)}; expected unet, vae, image_encoder")

    # 1. U-Net, EMA weights by default (LitEma flattens the names).
    raw_keys = [k for k in sd.keys() if k.startswith(UNET_PREFIX)]
    has_ema = has_ema_weights(sd)
    used_ema = use_ema and has_ema
    unet_ldm: dict[str, torch.Tensor] = {}
    for k in raw_keys:
        src = flat_ema_key(k) if used_ema else k
        if src not in sd:
            raise ValueError(f"{source}: EMA weights are incomplete: {src!r} (EMA of {k!r}) is missing; pass use_ema=False")
        unet_ldm[k[len(UNET_PREFIX) :]] = sd[src]
    ignored_copy = {flat_ema_key(k) for k in raw_keys} if not used_ema else set(raw_keys)
    unet_cfg = {**infer_unet_config(unet_ldm), **overrides.get("unet", {})}
    unet_sd = convert_ldm_unet_checkpoint({UNET_PREFIX + k: v for k, v in unet_ldm.items()}, unet_cfg)
    _check_none(unet_sd, "unet")
    leftover = [UNET_PREFIX + k for k in _unconsumed(unet_ldm, unet_sd)]

    # 2. VAE.
    vae_ldm = _take(sd, VAE_PREFIX)
    vae_cfg = {**infer_vae_config(vae_ldm), **overrides.get("vae", {})}
    if "scale_factor" in sd and "scaling_factor" not in overrides.get("vae", {}):
        scale = sd["scale_factor"]
        if scale.device.type != "meta":
            vae_cfg["scaling_factor"] = float(f"{float(scale):.6g}")  # stored as float32
    vae_sd = convert_ldm_vae_checkpoint({VAE_PREFIX + k: v for k, v in vae_ldm.items()}, vae_cfg)
    _check_none(vae_sd, "vae")
    leftover += [VAE_PREFIX + k for k in _unconsumed(vae_ldm, vae_sd)]

    # 3. CLIP vision tower (OpenAI format).
    visual = _take(sd, CLIP_VISUAL_PREFIX)
    if not visual:
        raise ValueError(f"{source}: no CLIP vision tower under {CLIP_VISUAL_PREFIX!r}")
    try:
        clip_cfg = {**infer_clip_vision_config(visual), **overrides.get("image_encoder", {})}
        clip_sd = convert_openai_clip_vision(visual)
    except KeyError as e:
        raise ValueError(f"{source}: CLIP vision tower is missing key {CLIP_VISUAL_PREFIX + e.args[0]!r}") from None
    leftover += [CLIP_VISUAL_PREFIX + k for k in _unconsumed(visual, clip_sd)]

    # 4. cc_projection: Linear(772 -> 768).
    cc_w, cc_b = sd[CC_PROJECTION_PREFIX + "weight"], sd.get(CC_PROJECTION_PREFIX + "bias")
    if cc_b is None:
        raise ValueError(f"{source}: cc_projection.bias is missing")
    out_dim, in_dim = cc_w.shape
    cc_cfg = dict(embed_dim=clip_cfg["projection_dim"], pose_dim=in_dim - clip_cfg["projection_dim"], cross_attention_dim=out_dim)
    cc = ConvertedComponent(cc_cfg, {"proj.weight": cc_w, "proj.bias": cc_b})

    # 5. Account for every key.
    consumed = set(sd.accessed) | ignored_copy
    left = sorted(set(leftover) | {k for k in sd.keys() if k not in consumed and not is_ignored(k)})
    if left:
        raise ValueError(
            f"{source}: {len(left)} unexpected key(s) not used by the conversion: {left[:8]}" + (" ..." if len(left) > 8 else "")
        )
    ignored = sorted(k for k in sd.keys() if is_ignored(k) or k in ignored_copy)
    return ConvertedLDM(
        unet=ConvertedComponent(unet_cfg, unet_sd),
        vae=ConvertedComponent(vae_cfg, vae_sd),
        image_encoder=ConvertedComponent(clip_cfg, clip_sd),
        cc_projection=cc,
        used_ema=used_ema,
        has_ema=has_ema,
        ignored=ignored,
    )
