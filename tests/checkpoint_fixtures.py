"""Writers of every checkpoint format from one set of components, for tests/test_checkpoints*.py.

The original-layout writer is built from the LDM module layout itself (docs/conventions.md, Checkpoint formats:
``input_blocks`` / ``middle_block`` / ``output_blocks`` numbering of ldm's UNetModel, the VAE's
``down.{i}.block.{j}`` / reversed ``up.{i}``, OpenAI CLIP's fused ``in_proj``), NOT by inverting
the converter's tables, so a wrong mapping in either direction makes the tests fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

UNET = "model.diffusion_model."
RESNET_LDM = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
              "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
TINY_OVERRIDES = {
    "unet": dict(attention_head_dim=4, norm_num_groups=8, sample_size=8),
    "vae": dict(norm_num_groups=8, sample_size=64),
    "image_encoder": dict(num_attention_heads=4),
}


class _Writer:
    def __init__(self, sd: dict[str, torch.Tensor], prefix: str):
        self.src = dict(sd)
        self.out: dict[str, torch.Tensor] = {}
        self.prefix = prefix

    def put(self, ldm: str, ours: str, fn=None):
        t = self.src.pop(ours)
        self.out[self.prefix + ldm] = fn(t) if fn else t

    def subtree(self, ldm_prefix: str, ours_prefix: str, rename=lambda s: s, fn=None):
        for k in [k for k in self.src if k.startswith(ours_prefix + ".")]:
            self.put(ldm_prefix + "." + rename(k[len(ours_prefix) + 1 :]), k, fn)

    def done(self):
        assert not self.src, f"unmapped: {sorted(self.src)[:5]}"
        return self.out


def _resnet_rename(rest: str) -> str:
    sub, _, tail = rest.partition(".")
    return f"{RESNET_LDM[sub]}.{tail}"


def unet_to_ldm(unet, prefix: str = UNET) -> dict[str, torch.Tensor]:
    """ldm ``UNetModel`` names: input_blocks[0] = conv_in; per level ``layers`` (resnet .0, attention .1)
    then a downsampler ``.0.op``; middle = resnet, transformer, resnet; output_blocks per level
    ``layers + 1`` entries, the last carrying the upsampler at ``.1.conv`` or, after an attention, ``.2.conv``."""
    cfg = unet.config
    w = _Writer(unet.state_dict(), prefix)
    n, layers = len(cfg.block_out_channels), cfg.layers_per_block
    for a, b in [("time_embed.0", "time_embedding.linear_1"), ("time_embed.2", "time_embedding.linear_2"),
                 ("input_blocks.0.0", "conv_in"), ("out.0", "conv_norm_out"), ("out.2", "conv_out")]:
        for kind in ("weight", "bias"):
            w.put(f"{a}.{kind}", f"{b}.{kind}")
    idx = 1
    for lvl in range(n):
        for j in range(layers):
            w.subtree(f"input_blocks.{idx}.0", f"down_blocks.{lvl}.resnets.{j}", _resnet_rename)
            w.subtree(f"input_blocks.{idx}.1", f"down_blocks.{lvl}.attentions.{j}")
            idx += 1
        if lvl < n - 1:
            w.subtree(f"input_blocks.{idx}.0.op", f"down_blocks.{lvl}.downsamplers.0.conv")
            idx += 1
    w.subtree("middle_block.0", "mid_block.resnets.0", _resnet_rename)
    w.subtree("middle_block.1", "mid_block.attentions.0")
    w.subtree("middle_block.2", "mid_block.resnets.1", _resnet_rename)
    idx = 0
    for lvl in range(n):
        has_attn = cfg.up_block_types[lvl].startswith("CrossAttn")
        for j in range(layers + 1):
            w.subtree(f"output_blocks.{idx}.0", f"up_blocks.{lvl}.resnets.{j}", _resnet_rename)
            w.subtree(f"output_blocks.{idx}.1", f"up_blocks.{lvl}.attentions.{j}")
            if j == layers and lvl < n - 1:
                w.subtree(f"output_blocks.{idx}.{2 if has_attn else 1}.conv", f"up_blocks.{lvl}.upsamplers.0.conv")
            idx += 1
    return w.done()


def vae_to_ldm(vae, prefix: str = "first_stage_model.") -> dict[str, torch.Tensor]:
    """ldm ``AutoencoderKL``: encoder.down.{i}.block.{j}, mid.block_1/attn_1/block_2 (1x1 conv q/k/v/proj_out),
    decoder.up.{i} numbered from the LOWEST resolution, so diffusers up_blocks[i] = up[n-1-i]."""
    w = _Writer(vae.state_dict(), prefix)
    n = len(vae.config.block_out_channels)
    res = lambda s: s.replace("conv_shortcut", "nin_shortcut")  # noqa: E731
    attn_names = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}

    def attn_rename(s):
        for a, b in attn_names.items():
            if s.startswith(a + "."):
                return b + s[len(a) :]
        raise KeyError(s)

    to_conv = lambda t: t[:, :, None, None] if t.ndim == 2 else t  # noqa: E731
    for part in ("encoder", "decoder"):
        for a, b in [("conv_in", "conv_in"), ("conv_out", "conv_out"), ("norm_out", "conv_norm_out")]:
            w.subtree(f"{part}.{a}", f"{part}.{b}")
        w.subtree(f"{part}.mid.block_1", f"{part}.mid_block.resnets.0", res)
        w.subtree(f"{part}.mid.block_2", f"{part}.mid_block.resnets.1", res)
        w.subtree(f"{part}.mid.attn_1", f"{part}.mid_block.attentions.0", attn_rename, to_conv)
    for i in range(n):
        for j in range(vae.config.layers_per_block):
            w.subtree(f"encoder.down.{i}.block.{j}", f"encoder.down_blocks.{i}.resnets.{j}", res)
        w.subtree(f"encoder.down.{i}.downsample.conv", f"encoder.down_blocks.{i}.downsamplers.0.conv")
        for j in range(vae.config.layers_per_block + 1):
            w.subtree(f"decoder.up.{n - 1 - i}.block.{j}", f"decoder.up_blocks.{i}.resnets.{j}", res)
        w.subtree(f"decoder.up.{n - 1 - i}.upsample.conv", f"decoder.up_blocks.{i}.upsamplers.0.conv")
    w.subtree("quant_conv", "quant_conv")
    w.subtree("post_quant_conv", "post_quant_conv")
    return w.done()


def clip_to_openai(image_encoder, prefix: str = "cond_stage_model.model.visual.") -> dict[str, torch.Tensor]:
    """OpenAI CLIP ``VisionTransformer``: conv1 (no bias), class_embedding, positional_embedding, ln_pre,
    transformer.resblocks.{i}.attn.in_proj_{weight,bias} = cat(q, k, v), ln_post, proj = W_proj^T."""
    sd = dict(image_encoder.state_dict())
    e = "vision_model.embeddings."
    out = {
        "conv1.weight": sd.pop(e + "patch_embedding.weight"),
        "class_embedding": sd.pop(e + "class_embedding"),
        "positional_embedding": sd.pop(e + "position_embedding.weight"),
        "proj": sd.pop("visual_projection.weight").t().contiguous(),
    }
    for a, b in [("ln_pre", "vision_model.pre_layrnorm"), ("ln_post", "vision_model.post_layernorm")]:
        for kind in ("weight", "bias"):
            out[f"{a}.{kind}"] = sd.pop(f"{b}.{kind}")
    for i in range(image_encoder.config.num_hidden_layers):
        s, d = f"vision_model.encoder.layers.{i}.", f"transformer.resblocks.{i}."
        for kind in ("weight", "bias"):
            out[f"{d}attn.in_proj_{kind}"] = torch.cat([sd.pop(f"{s}self_attn.{x}_proj.{kind}") for x in "qkv"])
            for a, b in [("attn.out_proj", "self_attn.out_proj"), ("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"),
                         ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")]:
                out[f"{d}{a}.{kind}"] = sd.pop(f"{s}{b}.{kind}")
    assert not sd, f"unmapped: {sorted(sd)[:5]}"
    return {prefix + k: v for k, v in out.items()}


def flat_ema(key: str) -> str:
    """LitEma: ``model.diffusion_model.a.0.b`` -> ``model_ema.diffusion_modela0b`` (docs/conventions.md, Checkpoint formats)."""
    return "model_ema." + key[len("model.") :].replace(".", "")


def original_state_dict(components, *, ema: bool = True, raw_unet_offset: float = 0.5) -> dict[str, torch.Tensor]:
    """Full original-layout state dict: EMA U-Net = the components' weights, raw U-Net = the same
    + ``raw_unet_offset`` (so a test can tell which copy was used), VAE, CLIP (+ text leftovers),
    cc_projection and the diffusion buffers."""
    unet = unet_to_ldm(components["unet"])
    sd: dict[str, torch.Tensor] = {}
    if ema:
        sd.update({k: (v + raw_unet_offset if v.is_floating_point() else v) for k, v in unet.items()})
        sd.update({flat_ema(k): v for k, v in unet.items()})
        sd["model_ema.decay"] = torch.tensor(0.9999)
        sd["model_ema.num_updates"] = torch.tensor(105000, dtype=torch.int32)
    else:
        sd.update(unet)
    sd.update(vae_to_ldm(components["vae"]))
    sd.update(clip_to_openai(components["image_encoder"]))
    w = components["image_encoder"].config.hidden_size
    sd.update({  # text-side leftovers of cond_stage_model.model (docs/conventions.md, Checkpoint formats)
        "cond_stage_model.model.token_embedding.weight": torch.zeros(10, w),
        "cond_stage_model.model.positional_embedding": torch.zeros(7, w),
        "cond_stage_model.model.ln_final.weight": torch.ones(w),
        "cond_stage_model.model.ln_final.bias": torch.zeros(w),
        "cond_stage_model.model.text_projection": torch.zeros(w, w),
        "cond_stage_model.model.logit_scale": torch.tensor(4.6),
    })
    cc = components["cc_projection"].state_dict()
    sd["cc_projection.weight"], sd["cc_projection.bias"] = cc["proj.weight"], cc["proj.bias"]
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
    sd["betas"] = betas.float()
    sd["alphas_cumprod"] = torch.cumprod(1 - betas, 0).float()
    sd["scale_factor"] = torch.tensor(0.18215)
    return sd


def write_lightning_ckpt(path: Path, sd, *, pickled_extra=None) -> Path:
    obj = {"state_dict": sd, "global_step": 105000, "epoch": 3}
    if pickled_extra is not None:
        obj["callbacks"] = pickled_extra
    torch.save(obj, path)
    return path


def write_layout(folder: Path, components, layout: str, *, bin_weights: bool = False) -> Path:
    """Diffusers layout A (kxic: Zero1to3StableDiffusionPipeline, cc_projection/projection.*) or B
    (bennyguo/ashawkey: Zero123Pipeline, clip_camera_projection/proj.*), docs/conventions.md, Checkpoint formats."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    components["unet"].save_pretrained(folder / "unet", safe_serialization=not bin_weights)
    components["vae"].save_pretrained(folder / "vae", safe_serialization=not bin_weights)
    components["image_encoder"].save_pretrained(folder / "image_encoder")
    components["scheduler"].save_pretrained(folder / "scheduler")
    cc = components["cc_projection"].state_dict()
    if layout == "A":
        sub, prefix, cfg = "cc_projection", "projection.", {"_class_name": "CCProjection", "_diffusers_version": "0.19.3"}
        index = {"_class_name": "Zero1to3StableDiffusionPipeline", "_diffusers_version": "0.19.3",
                 "cc_projection": ["pipeline_zero1to3", "CCProjection"], "safety_checker": [None, None],
                 "feature_extractor": ["transformers", "CLIPImageProcessor"]}
    else:
        sub, prefix = "clip_camera_projection", "proj."
        cfg = {"_class_name": "CLIPCameraProjection", "_diffusers_version": "0.16.0",
               "embedding_dim": cc["proj.weight"].shape[0], "additional_embeddings": 4}
        index = {"_class_name": "Zero123Pipeline", "_diffusers_version": "0.16.0",
                 "clip_camera_projection": ["pipeline_zero123", "CLIPCameraProjection"]}
    for k in ("vae", "unet", "scheduler"):
        index[k] = ["diffusers", type(components[k]).__name__]
    index["image_encoder"] = ["transformers", "CLIPVisionModelWithProjection"]
    (folder / sub).mkdir()
    (folder / sub / "config.json").write_text(json.dumps(cfg))
    weights = {prefix + "weight": cc["proj.weight"].clone(), prefix + "bias": cc["proj.bias"].clone()}
    if bin_weights:
        torch.save(weights, folder / sub / "diffusion_pytorch_model.bin")
    else:
        save_file(weights, str(folder / sub / "diffusion_pytorch_model.safetensors"))
    (folder / "model_index.json").write_text(json.dumps(index))
    return folder
