"""``Zero123Pipeline``: novel views of an object from one image and a camera change.

Numerics follow the original Zero-1-to-3 release (docs/conventions.md, Conditioning and Sampling):

* CLIP preprocessing: image in [-1, 1] -> bicubic resize to the encoder's ``image_size`` with
  ``align_corners=True``, no antialias, no centre crop -> [0, 1] -> OpenAI mean/std.
* The cross-attention context is ONE token ``cc_projection(concat(clip_embed, T))``.
* The concat latent is the VAE posterior **mode** of the input image, **not** scaled by 0.18215;
  U-Net input channels are ``[noisy latent (4), concat latent (4)]``.
* Classifier-free guidance: the unconditional branch uses an all-zero token (zeros AFTER the
  projection) and an all-zero concat latent; ``eps = u + s * (c - u)``.
* DDIM on the original timestep grid (:mod:`zero123.schedule`), eta 1.0 by default; ``solver=``
  picks DPM-Solver++, Euler ancestral or UniPC instead (built from the scheduler's config).

The image is encoded once per call; all views and both guidance branches go through the U-Net
in one batched call per step (chunked by ``max_batch``).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput

from .camera import RelativeCamera, check_cond_elevation, embed_cameras, parse_cameras
from .models.cc_projection import CCProjection  # noqa: F401  (diffusers loads only imported modules)
from .schedule import TIMESTEP_SPACINGS, Solver, TimestepSpacing, check_solver, make_scheduler, set_timesteps

#: OpenAI CLIP normalisation (docs/conventions.md, Conditioning).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

OutputType = Literal["pil", "np", "pt", "latent"]
OUTPUT_TYPES: tuple[str, ...] = ("pil", "np", "pt", "latent")

ImageInput = PIL.Image.Image | np.ndarray | torch.Tensor | str | os.PathLike


@dataclass
class ImageConditioning:
    """What the input image contributes, computed once per call.

    Attributes:
        image_embeds: ``(B, D)`` projected CLIP image embedding (not L2-normalised).
        concat_latents: ``(B, 4, h, w)`` VAE posterior mode, NOT multiplied by the scaling factor.
    """

    image_embeds: torch.Tensor
    concat_latents: torch.Tensor

    def repeat(self, n: int) -> "ImageConditioning":
        """Each entry repeated ``n`` times along the batch (``repeat_interleave``)."""
        return ImageConditioning(self.image_embeds.repeat_interleave(n, 0), self.concat_latents.repeat_interleave(n, 0))


@dataclass
class Zero123PipelineOutput(BaseOutput):
    """Output of :class:`Zero123Pipeline`.

    Attributes:
        images: one entry per target camera times ``num_images_per_prompt`` (view-major: the
            samples of view 0 first). A list of PIL images, an ``(N, H, W, 3)`` float array in
            [0, 1] (``"np"``), an ``(N, 3, H, W)`` tensor in [0, 1] (``"pt"``), or the scaled
            latents ``(N, 4, h, w)`` (``"latent"``).
    """

    images: list[PIL.Image.Image] | np.ndarray | torch.Tensor


class Zero123Pipeline(DiffusionPipeline):
    """Zero-1-to-3 novel-view synthesis.

    Args:
        vae: ``AutoencoderKL`` (SD KL-f8); ``config.sample_size`` is the image resolution.
        image_encoder: ``CLIPVisionModelWithProjection``; ``config.image_size`` is the CLIP input size.
        unet: ``UNet2DConditionModel`` with 8 input channels ``[noisy latent, concat latent]``.
        scheduler: a ``DDIMScheduler`` (docs/conventions.md, Sampling); other schedulers need
            ``timestep_spacing="diffusers"``.
        cc_projection: :class:`zero123.CCProjection`; its ``config.camera_embedding`` says what
            the 4th slot of T holds.
    """

    model_cpu_offload_seq = "image_encoder->cc_projection->unet->vae"
    _callback_tensor_inputs = ["latents"]

    def __init__(self, vae, image_encoder, unet, scheduler, cc_projection):
        super().__init__()
        self.register_modules(
            vae=vae, image_encoder=image_encoder, unet=unet, scheduler=scheduler, cc_projection=cc_projection
        )
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        torch_dtype: torch.dtype | str | None = None,
        dtype: torch.dtype | str | None = None,
        *,
        device: torch.device | str | None = None,
        use_ema: bool = True,
        camera_embedding: str | None = None,
        trust_pickle: bool = False,
        config_overrides: dict | None = None,
        local_files_only: bool | None = None,
        cache_dir: str | os.PathLike | None = None,
    ) -> "Zero123Pipeline":
        """Load a pipeline from any supported source through :func:`zero123.checkpoints.load_components`.

        ``pretrained_model_name_or_path``: ``"bundled"`` (the small model shipped with the package), a
        folder saved by :meth:`save_pretrained`, an original ``.ckpt`` / ``.safetensors`` file, a
        community diffusers folder (either layout, no remote code) or a known name / hub id found in
        the local Hugging Face cache (``docs/conventions.md``, "Checkpoint formats").

        ``torch_dtype`` and ``dtype`` are synonyms (a ``torch.dtype`` or a name such as ``"fp16"``);
        the default is float32 whatever the stored dtype. ``device`` moves the pipeline there.
        ``use_ema``, ``camera_embedding`` and ``trust_pickle`` apply to original single files;
        :func:`zero123.loading.load_pipeline` is the same with ``"auto"`` device/dtype resolution.
        """
        from .checkpoints import load_components

        if torch_dtype is not None and dtype is not None and torch_dtype != dtype:
            raise ValueError(f"torch_dtype={torch_dtype} and dtype={dtype} disagree; pass only one")
        dtype = dtype if dtype is not None else torch_dtype
        if not isinstance(pretrained_model_name_or_path, (str, os.PathLike)):
            raise TypeError(
                f"pretrained_model_name_or_path must be a path or name, got {type(pretrained_model_name_or_path).__name__}"
            )
        loaded = load_components(
            pretrained_model_name_or_path,
            # One dtype for every component: transformers >= 5 would otherwise keep the stored
            # dtype of the image encoder (e.g. the bundled model's float16) while diffusers upcasts.
            torch_dtype=torch.float32 if dtype is None else dtype,
            use_ema=use_ema,
            camera_embedding=camera_embedding,
            trust_pickle=trust_pickle,
            config_overrides=config_overrides,
            local_files_only=local_files_only,
            cache_dir=cache_dir,
        )
        pipe = cls(**loaded.components)
        return pipe if device is None else pipe.to(device)

    # ------------------------------------------------------------------ properties
    @property
    def image_size(self) -> int:
        """Side of the square images the model works at (``vae.config.sample_size``)."""
        return int(self.vae.config.sample_size)

    @property
    def camera_embedding(self) -> str:
        """What the 4th slot of T holds: ``"relative_radius"`` or ``"cond_polar"``."""
        return self.cc_projection.config.camera_embedding

    # ------------------------------------------------------------------ seams
    def clip_preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """CLIP input from images in [-1, 1] (docs/conventions.md, Conditioning).

        Args:
            images: ``(B, 3, H, W)`` in [-1, 1].

        Returns:
            ``(B, 3, S, S)`` with ``S = image_encoder.config.image_size``: bicubic resize with
            ``align_corners=True`` and no antialias, no centre crop, mapped to [0, 1], then
            normalised with the OpenAI mean/std. Not clamped after the resize (neither is the original).
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")
        s = int(self.image_encoder.config.image_size)
        x = images
        if tuple(x.shape[-2:]) != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bicubic", align_corners=True, antialias=False)
        x = (x + 1.0) / 2.0
        mean = torch.tensor(CLIP_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        return (x - mean) / std

    def encode_image(self, images: torch.Tensor) -> ImageConditioning:
        """CLIP embedding and concat latent of condition images.

        Args:
            images: ``(B, 3, H, W)`` in [-1, 1], at the model's resolution.

        Returns:
            :class:`ImageConditioning` with ``image_embeds`` ``(B, D)`` and ``concat_latents``
            ``(B, 4, h, w)`` = the VAE posterior mode, NOT scaled.
        """
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"images must be a (B, 3, H, W) tensor in [-1, 1], got "
                f"{tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}"
            )
        device = self._execution_device
        enc_dtype = self.image_encoder.dtype
        clip_in = self.clip_preprocess(images.to(device=device, dtype=torch.float32)).to(enc_dtype)
        image_embeds = self.image_encoder(pixel_values=clip_in).image_embeds
        vae_in = images.to(device=device, dtype=self.vae.dtype)
        concat_latents = self.vae.encode(vae_in).latent_dist.mode()
        return ImageConditioning(image_embeds=image_embeds, concat_latents=concat_latents)

    @property
    def prediction_type(self) -> str:
        """What the U-Net predicts: ``"epsilon"`` (every released Zero123) or ``"v_prediction"``
        (``v = sqrt(a_t) * eps - sqrt(1 - a_t) * x_0``; the bundled model), from the scheduler config."""
        kind = self.scheduler.config.get("prediction_type", "epsilon")
        if kind not in ("epsilon", "v_prediction"):
            raise ValueError(
                f"scheduler.config.prediction_type is {kind!r}; Zero123Pipeline supports 'epsilon' and 'v_prediction'"
            )
        return kind

    def predict_noise(
        self,
        noisy_latents: torch.Tensor,
        timestep: torch.Tensor | int,
        conditioning: ImageConditioning,
        poses: torch.Tensor,
        guidance_scale: float = 3.0,
        max_batch: int | None = None,
    ) -> torch.Tensor:
        """Guided noise prediction for a batch of views (one batched U-Net call, chunked by ``max_batch``).

        Args:
            noisy_latents: ``(B, 4, h, w)`` scaled noisy latents x_t.
            timestep: scalar or ``(B,)`` timesteps.
            conditioning: from :meth:`encode_image`, batch 1 (broadcast) or B.
            poses: ``(B, 4)`` camera vectors T.
            guidance_scale: CFG scale s; 1.0 runs the conditional branch only.
            max_batch: largest U-Net batch per forward call (``None``: everything at once).

        Returns:
            ``(B, 4, h, w)`` ``eps = eps_uncond + s * (eps_cond - eps_uncond)``. A v-prediction
            model's output is converted: ``eps = sqrt(a_t) * v + sqrt(1 - a_t) * x_t`` (guidance
            commutes with this affine map, so it is the same guided eps).
        """
        out = self.predict_model_output(noisy_latents, timestep, conditioning, poses, guidance_scale, max_batch)
        if self.prediction_type == "epsilon":
            return out
        a = self.scheduler.alphas_cumprod.to(device=out.device, dtype=torch.float32)
        t = torch.as_tensor(timestep, device=out.device).long().expand(out.shape[0])
        a_t = a[t].view(-1, 1, 1, 1)
        return (a_t.sqrt() * out.float() + (1.0 - a_t).sqrt() * noisy_latents.float()).to(out.dtype)

    def predict_model_output(
        self,
        noisy_latents: torch.Tensor,
        timestep: torch.Tensor | int,
        conditioning: ImageConditioning,
        poses: torch.Tensor,
        guidance_scale: float = 3.0,
        max_batch: int | None = None,
    ) -> torch.Tensor:
        """The guided U-Net output in the model's own parametrisation (:attr:`prediction_type`),
        what ``scheduler.step`` takes. Arguments as :meth:`predict_noise`."""
        b = noisy_latents.shape[0]
        if poses.ndim != 2 or poses.shape != (b, self.cc_projection.config.pose_dim):
            raise ValueError(
                f"poses must have shape ({b}, {self.cc_projection.config.pose_dim}) to match noisy_latents, got {tuple(poses.shape)}"
            )
        embeds, concat = conditioning.image_embeds, conditioning.concat_latents
        if embeds.shape[0] == 1 and b != 1:
            embeds, concat = embeds.expand(b, -1), concat.expand(b, -1, -1, -1)
        elif embeds.shape[0] != b:
            raise ValueError(f"conditioning has batch {embeds.shape[0]}, expected 1 or {b} (the batch of noisy_latents)")
        dtype = self.unet.dtype
        device = noisy_latents.device
        tokens = self.cc_projection(embeds.to(device=device, dtype=self.cc_projection.dtype), poses.to(device))
        tokens = tokens.to(dtype)
        concat = concat.to(device=device, dtype=dtype)
        noisy = noisy_latents.to(dtype)
        t = torch.as_tensor(timestep, device=device)
        t = t.expand(b) if t.ndim == 0 else t
        do_cfg = guidance_scale != 1.0
        if do_cfg:
            # uncond first: zero token after the projection and zero concat latent (docs/conventions.md, Conditioning)
            unet_in = torch.cat([torch.cat([noisy, torch.zeros_like(concat)], 1), torch.cat([noisy, concat], 1)])
            context = torch.cat([torch.zeros_like(tokens), tokens])
            t = torch.cat([t, t])
        else:
            unet_in = torch.cat([noisy, concat], 1)
            context = tokens
        out = self._unet_batched(unet_in, t, context, max_batch)
        if do_cfg:
            out_uncond, out_cond = out.chunk(2)
            out = out_uncond + guidance_scale * (out_cond - out_uncond)
        return out

    def _unet_batched(self, sample: torch.Tensor, t: torch.Tensor, context: torch.Tensor, max_batch: int | None):
        n = sample.shape[0]
        step = n if max_batch is None else max_batch
        outs = [
            self.unet(sample[i : i + step], t[i : i + step], encoder_hidden_states=context[i : i + step], return_dict=False)[0]
            for i in range(0, n, step)
        ]
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    # ------------------------------------------------------------------ input handling
    def image_to_tensor(self, image: ImageInput) -> torch.Tensor:
        """One input image as a ``(1, 3, S, S)`` float32 tensor in [-1, 1] at the model's resolution.

        Anything :func:`zero123.image_io.load_image` reads (PIL image of any mode, path, numpy
        ``(H, W, 3|4)`` uint8/uint16 or float in [0, 1], torch ``(3|4, H, W)`` in [0, 1]; out-of-range
        floats are an error). The image is resized to ``S x S`` first (a non-square image is
        squashed, as the original did; :func:`zero123.nvs.prepare_input` pads instead), then any
        alpha is composited over white (``docs/conventions.md``, "Preprocessing").
        """
        from .image_io import composite_on_white, load_image

        pil = load_image(image, name="input_image")
        s = self.image_size
        if pil.size != (s, s):
            pil = pil.resize((s, s), PIL.Image.Resampling.LANCZOS)
        arr = np.asarray(composite_on_white(pil), dtype=np.float32) / 127.5 - 1.0
        return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous()

    def check_inputs(self, num_inference_steps, guidance_scale, eta, num_images_per_prompt, output_type, max_batch, timestep_spacing):
        self.prediction_type  # noqa: B018  (raises for a parametrisation the loop cannot sample)
        if isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, (int, np.integer)) or num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be a positive int, got {num_inference_steps!r}")
        for name, v in (("guidance_scale", guidance_scale), ("eta", eta)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
                raise ValueError(f"{name} must be a finite number, got {v!r}")
        if eta < 0:
            raise ValueError(f"eta must be >= 0, got {eta}")
        if isinstance(num_images_per_prompt, bool) or not isinstance(num_images_per_prompt, int) or num_images_per_prompt < 1:
            raise ValueError(f"num_images_per_prompt must be a positive int, got {num_images_per_prompt!r}")
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
        if max_batch is not None and (isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1):
            raise ValueError(f"max_batch must be a positive int or None, got {max_batch!r}")
        if timestep_spacing not in TIMESTEP_SPACINGS:
            raise ValueError(f"timestep_spacing must be one of {TIMESTEP_SPACINGS}, got {timestep_spacing!r}")

    def _check_device_dtype(self, device: torch.device) -> None:
        if device.type == "cpu":
            for name in ("unet", "vae", "image_encoder"):
                if getattr(self, name).dtype == torch.float16:
                    raise ValueError(
                        f"float16 is not supported on CPU ({name} is float16): load with dtype=torch.float32 "
                        "(or torch.bfloat16), or move the pipeline to a CUDA device"
                    )

    @staticmethod
    def _randn(shape, generators: list[torch.Generator | None], device, dtype) -> torch.Tensor:
        """Standard normal noise of ``shape`` (leading dim = number of samples), sample i drawn with
        ``generators[i]`` on that generator's device, so results don't depend on batch composition."""
        out = []
        for g in generators:
            gen_device = g.device if g is not None else torch.device("cpu")
            out.append(torch.randn((1, *shape[1:]), generator=g, device=gen_device, dtype=torch.float32))
        return torch.cat(out).to(device=device, dtype=dtype)

    # ------------------------------------------------------------------ call
    @torch.no_grad()
    def __call__(
        self,
        input_image: ImageInput,
        camera_params: dict | Sequence[dict] | RelativeCamera | None = None,
        *,
        cameras: Sequence[RelativeCamera] | RelativeCamera | None = None,
        num_inference_steps: int = 50,
        guidance_scale: float = 3.0,
        eta: float = 1.0,
        generator: torch.Generator | Sequence[torch.Generator] | None = None,
        num_images_per_prompt: int = 1,
        latents: torch.Tensor | None = None,
        output_type: OutputType = "pil",
        return_dict: bool = True,
        callback_on_step_end: Callable[[Any, int, torch.Tensor, dict], dict] | None = None,
        cond_elevation: float | None = None,
        max_batch: int | None = None,
        timestep_spacing: TimestepSpacing | None = None,
        solver: Solver = "ddim",
    ) -> Zero123PipelineOutput | tuple:
        """Generate the view of ``input_image`` from each target camera.

        Args:
            input_image: PIL image, path, numpy ``(H, W, 3|4)`` (uint8, uint16 or float in [0, 1]) or
                torch ``(3|4, H, W)`` in [0, 1] (:meth:`image_to_tensor`); RGBA is composited on white.
            camera_params: one dict ``{"azimuth": deg, "elevation": deg, "radius": ratio}`` (or
                ``"delta_radius"``) or a list of them; +elevation moves the camera up.
            cameras: typed alternative to ``camera_params`` (one or a list of :class:`RelativeCamera`).
            num_inference_steps: S; with ``timestep_spacing="original"`` S = 50 runs 49 steps (docs/conventions.md, Sampling).
            guidance_scale: classifier-free guidance scale (3.0 as the original demo); 1.0 skips
                the unconditional branch.
            eta: DDIM eta (1.0 = the original demo's stochastic sampler); only ``solver="ddim"`` uses it.
            generator: one generator, or one per output (``num_views * num_images_per_prompt``),
                which makes each output independent of the others in the call (the initial noise
                and, for DDIM with eta > 0 and Euler ancestral, every step's noise).
            num_images_per_prompt: samples per target camera (outputs are view-major).
            latents: initial noise ``(N, 4, h, w)`` with N = views * num_images_per_prompt.
            output_type: ``"pil"``, ``"np"``, ``"pt"`` or ``"latent"``.
            return_dict: return a :class:`Zero123PipelineOutput` (else a 1-tuple).
            callback_on_step_end: ``f(pipe, step_index, timestep, {"latents": ...}) -> dict``; a
                returned ``"latents"`` replaces the current latents.
            cond_elevation: the input view's elevation in degrees (+ = above); required when
                ``cc_projection.config.camera_embedding == "cond_polar"`` (Stable Zero123).
            max_batch: largest U-Net batch per forward call, to bound memory.
            timestep_spacing: ``"original"`` (the release's grid; the default for ``solver="ddim"``)
                or ``"diffusers"`` (the scheduler's own; the only choice for the other solvers).
            solver: ``"ddim"`` (``self.scheduler``, unchanged: the original demo's sampler), or
                ``"dpm++"``, ``"euler-a"``, ``"unipc"``: a fresh scheduler from
                :func:`zero123.schedule.make_scheduler` built from ``self.scheduler.config``, used
                for this call only (``self.scheduler`` is left as it is).
        """
        # 1. Check inputs; pick the scheduler
        check_solver(solver)
        if timestep_spacing is None:
            timestep_spacing = "original" if solver == "ddim" else "diffusers"
        self.check_inputs(num_inference_steps, guidance_scale, eta, num_images_per_prompt, output_type, max_batch, timestep_spacing)
        if solver != "ddim" and timestep_spacing != "diffusers":
            raise ValueError(
                f"timestep_spacing={timestep_spacing!r} is the DDIM grid; solver={solver!r} uses its own "
                "spacing: leave timestep_spacing unset (or 'diffusers')"
            )
        scheduler = self.scheduler if solver == "ddim" else make_scheduler(solver, self.scheduler.config)
        if (camera_params is None) == (cameras is None):
            raise ValueError("give exactly one of camera_params (dicts) or cameras (RelativeCamera objects)")
        if cameras is not None:
            cams = [cameras] if isinstance(cameras, RelativeCamera) else list(cameras)
            if not cams:
                raise ValueError("cameras is empty; give at least one target camera")
            for c in cams:
                if not isinstance(c, RelativeCamera):
                    raise TypeError(f"cameras must be RelativeCamera objects, got {type(c).__name__}")
        else:
            cams = parse_cameras(camera_params)
        cond_elevation = check_cond_elevation(cond_elevation)  # checked even when the embedding ignores it
        poses_one = embed_cameras(cams, self.camera_embedding, cond_elevation)  # (V, 4)
        n_views = len(cams)
        n = n_views * num_images_per_prompt
        if isinstance(generator, (list, tuple)):
            if len(generator) != n:
                raise ValueError(
                    f"generator is a list of {len(generator)}; expected one per output = "
                    f"{n_views} views x {num_images_per_prompt} images = {n}"
                )
            generators = list(generator)
        else:
            generators = [generator] * n
        device = self._execution_device
        self._check_device_dtype(device)

        # 2. Encode the input image once: CLIP embedding and unscaled concat latent
        image = self.image_to_tensor(input_image)
        cond = self.encode_image(image.to(device))
        poses = poses_one.repeat_interleave(num_images_per_prompt, 0).to(device)  # (N, 4), view-major

        # 3. Timesteps
        timesteps = set_timesteps(scheduler, num_inference_steps, timestep_spacing, device=device)
        self._num_timesteps = len(timesteps)

        # 4. Initial latents
        h = w = self.image_size // self.vae_scale_factor
        shape = (n, self.unet.config.out_channels, h, w)
        if latents is None:
            latents = self._randn(shape, generators, device, torch.float32)
        else:
            if not isinstance(latents, torch.Tensor) or tuple(latents.shape) != shape:
                raise ValueError(f"latents must be a tensor of shape {shape}, got {getattr(latents, 'shape', type(latents).__name__)}")
            latents = latents.to(device=device, dtype=torch.float32)
        latents = latents * scheduler.init_noise_sigma

        # 5. Denoising loop (latents kept in float32; the U-Net runs in its own dtype)
        step_kwargs = self._step_kwargs(scheduler, eta)
        with self.progress_bar(total=len(timesteps)) as bar:
            for i, t in enumerate(timesteps):
                model_in = scheduler.scale_model_input(latents, t)
                out = self.predict_model_output(model_in, t, cond, poses, guidance_scale, max_batch).float()
                extra = self._step_extra(scheduler, step_kwargs, eta, shape, generators, device)
                latents = scheduler.step(out, t, latents, **extra, return_dict=False)[0]
                if callback_on_step_end is not None:
                    out = callback_on_step_end(self, i, t, {"latents": latents}) or {}
                    latents = out.get("latents", latents)
                bar.update()

        # 6. Decode
        if output_type == "latent":
            images = latents
        else:
            decoded = self.vae.decode(latents.to(self.vae.dtype) / self.vae.config.scaling_factor, return_dict=False)[0]
            images = (decoded.float() / 2 + 0.5).clamp(0, 1)
            if output_type == "np":
                images = images.permute(0, 2, 3, 1).cpu().numpy()
            elif output_type == "pil":
                arr = (images.permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)
                images = [PIL.Image.fromarray(a) for a in arr]
        self.maybe_free_model_hooks()
        if not return_dict:
            return (images,)
        return Zero123PipelineOutput(images=images)

    @property
    def num_timesteps(self) -> int:
        """Denoising steps the current (or last) call runs: what a step callback's total is."""
        return getattr(self, "_num_timesteps", 0)

    @staticmethod
    def _step_kwargs(scheduler, eta: float) -> dict:
        params = set(inspect.signature(scheduler.step).parameters)
        kwargs: dict[str, Any] = {}
        if "eta" in params:
            kwargs["eta"] = eta
        # per-sample step noise where the scheduler uses it: DDIM (eta > 0), SDE-DPM-Solver
        if "variance_noise" in params and ("eta" in params or str(scheduler.config.get("algorithm_type", "")).startswith("sde")):
            kwargs["variance_noise"] = None
        return kwargs

    def _step_extra(self, scheduler, step_kwargs: dict, eta: float, shape, generators, device) -> dict:
        """Per-step scheduler kwargs: DDIM gets its eta noise drawn per sample with that sample's
        generator; other schedulers that take a generator (Euler ancestral) get the list of
        per-sample generators (diffusers' ``randn_tensor`` draws sample i from generator i), or
        the one generator when the caller gave one."""
        extra = {k: v for k, v in step_kwargs.items() if k != "variance_noise"}
        if "variance_noise" in step_kwargs:
            if eta > 0:
                extra["variance_noise"] = self._randn(shape, generators, device, torch.float32)
        elif "generator" in inspect.signature(scheduler.step).parameters:
            same = all(g is generators[0] for g in generators)
            extra["generator"] = generators[0] if same else list(generators)
        return extra
