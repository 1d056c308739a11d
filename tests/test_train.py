"""Trainer (issue 5): config, CFG dropout (docs/conventions.md, Conditioning), EMA and init (docs/conventions.md, Training recipe), end-to-end CLI runs,
export, and bad input. Tiny models, a handful of steps, 32 px random views."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from typer.testing import CliRunner

from zero123.camera import world_to_cam_from_spherical
from zero123.train.config import Config, ConfigError

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny-debug.yaml"


def make_views_release(root: Path, n_objects: int = 3, n_views: int = 12, size: int = 32, seed: int = 0) -> Path:
    """A views_release folder (docs/conventions.md, Dataset layout) of random RGBA views and real world-to-camera poses."""
    rng = np.random.default_rng(seed)
    names = []
    for i in range(n_objects):
        d = root / f"obj{i:03d}"
        d.mkdir(parents=True, exist_ok=True)
        names.append(d.name)
        for v in range(n_views):
            rgba = rng.integers(0, 256, (size, size, 4), dtype=np.uint8)
            rgba[..., 3] = np.where(rgba[..., 3] > 100, 255, 0)
            Image.fromarray(rgba, "RGBA").save(d / f"{v:03d}.png")
            w2c = world_to_cam_from_spherical(rng.uniform(0.2, 2.9), rng.uniform(-3, 3), rng.uniform(1.5, 2.2))
            np.save(d / f"{v:03d}.npy", w2c)
    (root / "valid_paths.json").write_text(json.dumps(names))
    return root


def tiny_config(tmp_path: Path, name: str = "cfg.yaml", **sections) -> Path:
    """configs/tiny-debug.yaml with per-section overrides, written to tmp_path."""
    data = yaml.safe_load(TINY.read_text())
    data["data"]["image_size"] = 32
    data["vae_stage"]["steps"] = 2
    data["train"]["sample_every"] = 0
    for sec, upd in sections.items():
        data[sec].update(upd)
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data))
    return p


def run_cli(*args):
    from zero123.cli.__main__ import app

    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def views(tmp_path):
    return make_views_release(tmp_path / "data")


# --------------------------------------------------------------------------- dropout (docs/conventions.md, Conditioning)
def test_cfg_dropout_intervals_are_exact():
    """docs/conventions.md, Conditioning: r<0.05 CLIP only; 0.05<=r<0.10 both; 0.10<=r<0.15 concat only; else none."""
    from zero123.train.dropout import apply_cfg_dropout, dropout_masks

    r = torch.tensor([0.0, 0.0499, 0.05, 0.0999, 0.10, 0.1499, 0.15, 0.9])
    m = dropout_masks(r)
    assert m.drop_clip.tolist() == [True, True, True, True, False, False, False, False]
    assert m.drop_concat.tolist() == [False, False, True, True, True, True, False, False]
    emb, lat = apply_cfg_dropout(torch.ones(8, 5), torch.ones(8, 4, 2, 2), m)
    assert emb[:, 0].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert lat[:, 0, 0, 0].tolist() == [1, 1, 0, 0, 0, 0, 1, 1]
    # the rates over many draws
    m = dropout_masks(torch.rand(200_000, generator=torch.Generator().manual_seed(0)))
    assert abs(m.drop_clip.float().mean().item() - 0.10) < 0.003
    assert abs(m.drop_concat.float().mean().item() - 0.10) < 0.003
    assert abs((m.drop_clip & m.drop_concat).float().mean().item() - 0.05) < 0.003


def test_dropout_zeroes_clip_before_projection_pose_kept():
    """docs/conventions.md, Conditioning: a dropped CLIP embedding still gets T appended, so the token is proj([0, T])."""
    from zero123.models.cc_projection import CCProjection
    from zero123.train.loop import Denoiser

    cc = CCProjection(embed_dim=8, cross_attention_dim=8)
    seen = {}

    class FakeUNet(torch.nn.Module):
        def forward(self, x, t, encoder_hidden_states):
            seen["x"], seen["tok"] = x, encoder_hidden_states
            return type("O", (), {"sample": x[:, :4]})()

    class FakeEnc(torch.nn.Module):
        def forward(self, pixel_values):
            return type("O", (), {"image_embeds": torch.ones(pixel_values.shape[0], 8)})()

    d = Denoiser(FakeUNet(), cc, FakeEnc(), lambda x: x, train_image_encoder=False)
    pose = torch.tensor([[0.3, 0.5, 0.8, 0.1], [0.3, 0.5, 0.8, 0.1]])
    d(torch.zeros(2, 4, 2, 2), torch.tensor([1, 1]), torch.ones(2, 4, 2, 2), pose,
      torch.tensor([True, False]), torch.tensor([False, True]), torch.zeros(2, 3, 4, 4))
    expect0 = cc.proj(torch.cat([torch.zeros(8), pose[0]]))
    expect1 = cc.proj(torch.cat([torch.ones(8), pose[1]]))
    torch.testing.assert_close(seen["tok"][0, 0], expect0)
    torch.testing.assert_close(seen["tok"][1, 0], expect1)
    assert seen["x"][0, 4:].eq(1).all() and seen["x"][1, 4:].eq(0).all()


# --------------------------------------------------------------------------- EMA (docs/conventions.md, Training recipe)
def test_ema_warmup_decay():
    """docs/conventions.md, Training recipe: decay_n = min(decay, (1 + n) / (10 + n))."""
    from zero123.train.ema import EMA

    lin = torch.nn.Linear(1, 1, bias=False)
    lin.weight.data.fill_(0.0)
    ema = EMA(lin, 0.9999)
    assert ema.current_decay() == pytest.approx(0.1)
    lin.weight.data.fill_(1.0)
    ema.update(lin)  # 0.1 * 0 + 0.9 * 1
    assert ema.shadow["weight"].item() == pytest.approx(0.9)
    assert ema.current_decay() == pytest.approx(2 / 11)
    ema.num_updates = 10**7
    assert ema.current_decay() == pytest.approx(0.9999)


# --------------------------------------------------------------------------- config
@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path):
    cfg = Config.load(path)
    assert Config.from_dict(cfg.to_dict()) == cfg


def test_config_unknown_key_names_it(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  max_step: 3\n  train_image_encoder: true\n")
    with pytest.raises(ConfigError, match=r"train\.max_step"):
        Config.load(p)
    p.write_text("trian:\n  max_steps: 3\n")
    with pytest.raises(ConfigError, match="trian"):
        Config.load(p)


def test_config_bad_values_name_the_key():
    with pytest.raises(ConfigError, match="train.batch_size"):
        Config.from_dict({"train": {"batch_size": 0, "train_image_encoder": True}})
    with pytest.raises(ConfigError, match="train.train_image_encoder"):
        Config.from_dict({"model": {"init": "scratch"}, "train": {"train_image_encoder": False}})
    with pytest.raises(ConfigError, match="model.init_path"):
        Config.from_dict({"model": {"init": "zero123"}})


def test_config_yaml_roundtrip(tmp_path):
    cfg = Config.load(TINY)
    cfg.save(tmp_path / "x.yaml")
    assert Config.load(tmp_path / "x.yaml") == cfg


# --------------------------------------------------------------------------- init (docs/conventions.md, Training recipe)
def test_sd_image_variations_init_widens_conv_in(tmp_path):
    """docs/conventions.md, Training recipe: conv_in 4 -> 8 with zero new channels: the widened U-Net ignores the concat latent
    until trained; cc_projection starts as identity on the embedding columns (docs/conventions.md, Network)."""
    from zero123.models.factory import build_components
    from zero123.train.config import ModelConfig
    from zero123.train.init import initial_components

    comps = build_components("tiny", overrides={"unet": {"in_channels": 4}})
    folder = tmp_path / "sdiv"
    for k in ("unet", "vae", "image_encoder"):
        comps[k].save_pretrained(folder / k)
    out = initial_components(ModelConfig(init="sd_image_variations", init_path=str(folder)))
    unet = out["unet"]
    assert unet.conv_in.in_channels == 8 and unet.config.in_channels == 8
    assert unet.conv_in.weight[:, 4:].abs().sum() == 0
    x, t, ctx = torch.randn(1, 4, 8, 8), torch.tensor([10]), torch.randn(1, 1, 32)
    with torch.no_grad():
        ref = comps["unet"](x, t, encoder_hidden_states=ctx).sample
        got = unet(torch.cat([x, torch.randn(1, 4, 8, 8)], 1), t, encoder_hidden_states=ctx).sample
    torch.testing.assert_close(got, ref)
    w = out["cc_projection"].proj.weight
    torch.testing.assert_close(w[:, :32], torch.eye(32))
    assert out["cc_projection"].proj.bias.abs().sum() == 0


# --------------------------------------------------------------------------- end to end
def test_train_export_generate(tmp_path, views):
    """`zero123 train` from scratch (VAE stage, joint encoder), then `zero123 export`, then the
    pipeline loads the export and generates; EMA weights are exported by default."""
    cfg = tiny_config(tmp_path, train={"max_steps": 3, "checkpoint_every": 1, "keep_last": 2,
                                       "sample_every": 3, "log_every": 1, "ema_decay": 0.5})
    run = tmp_path / "run"
    r = run_cli("train", "--data", views, "--config", cfg, "--out", run, "--no-progress")
    assert r.exit_code == 0, r.output
    assert "step 3/3" in r.output and "loss" in r.output
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts == ["step-0000002", "step-0000003"]  # keep-last-2
    assert (run / "config.yaml").is_file() and list((run / "logs").iterdir())
    assert (run / "samples" / "step-0000003.png").is_file()
    assert Config.load(run / "config.yaml") == Config.load(cfg)

    r = run_cli("export", run, "-o", tmp_path / "model")
    assert r.exit_code == 0, r.output
    import zero123.models.cc_projection  # noqa: F401  (diffusers resolves the component class by module)
    from safetensors.torch import load_file

    from zero123.pipeline import Zero123Pipeline

    pipe = Zero123Pipeline.from_pretrained(tmp_path / "model")
    ema = load_file(str(run / "checkpoints" / "step-0000003" / "unet_ema.safetensors"))
    raw = load_file(str(run / "checkpoints" / "step-0000003" / "unet.safetensors"))
    k = "conv_in.weight"
    torch.testing.assert_close(pipe.unet.state_dict()[k], ema[k])
    assert not torch.equal(ema[k], raw[k])
    vae_cfg = json.loads((run / "base" / "vae" / "config.json").read_text())
    assert pipe.vae.config.scaling_factor == pytest.approx(vae_cfg["scaling_factor"])
    assert vae_cfg["scaling_factor"] != pytest.approx(0.18215)  # set from the trained VAE's latent std
    pipe.set_progress_bar_config(disable=True)
    out = pipe(Image.new("RGB", (32, 32), "red"), {"azimuth": 30}, num_inference_steps=3, output_type="np").images
    assert out.shape == (1, 32, 32, 3) and np.isfinite(out).all()

    r = run_cli("export", run, "-o", tmp_path / "model")
    assert r.exit_code == 2 and "already exists" in r.output


def test_existing_run_without_resume_is_refused(tmp_path, views):
    cfg = tiny_config(tmp_path, train={"max_steps": 1})
    run = tmp_path / "run"
    assert run_cli("train", "--data", views, "--config", cfg, "--out", run, "--no-progress").exit_code == 0
    r = run_cli("train", "--data", views, "--config", cfg, "--out", run, "--no-progress")
    assert r.exit_code == 2 and "--resume" in r.output


def test_resume_with_different_config_is_a_clear_error(tmp_path, views):
    run = tmp_path / "run"
    cfg = tiny_config(tmp_path, train={"max_steps": 1})
    assert run_cli("train", "--data", views, "--config", cfg, "--out", run, "--no-progress").exit_code == 0
    other = tiny_config(tmp_path, "other.yaml", train={"max_steps": 2}, optim={"lr": 5e-4})
    r = run_cli("train", "--data", views, "--config", other, "--out", run, "--resume", "--no-progress")
    assert r.exit_code == 2
    assert "error:" in r.output and "optim.lr" in r.output
    # max_steps alone may change
    longer = tiny_config(tmp_path, "longer.yaml", train={"max_steps": 2})
    r = run_cli("train", "--data", views, "--config", longer, "--out", run, "--resume", "--no-progress")
    assert r.exit_code == 0, r.output
    assert (run / "checkpoints" / "step-0000002").is_dir()


# --------------------------------------------------------------------------- bad input
def test_empty_dataset_folder_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    r = run_cli("train", "--data", tmp_path / "empty", "--config", tiny_config(tmp_path), "--out", tmp_path / "run")
    assert r.exit_code == 2 and r.output.startswith("error:"), r.output


def test_png_npy_count_mismatch_is_a_clear_error(tmp_path, views):
    (views / "obj001" / "005.npy").unlink()
    r = run_cli("train", "--data", views, "--config", tiny_config(tmp_path), "--out", tmp_path / "run")
    assert r.exit_code == 2 and "obj001" in r.output, r.output


def test_unknown_config_key_through_cli(tmp_path, views):
    p = tmp_path / "c.yaml"
    p.write_text(TINY.read_text().replace("keep_last:", "keep_lastt:"))
    r = run_cli("train", "--data", views, "--config", p, "--out", tmp_path / "run")
    assert r.exit_code == 2 and "train.keep_lastt" in r.output


@pytest.mark.parametrize("cache", [False, True], ids=["streamed", "cached"])
def test_corrupt_png_is_skipped_and_logged(tmp_path, views, cache, caplog):
    """A corrupt PNG met during training is skipped (pair re-drawn), logged, and training goes on."""
    for v in range(1, 12):  # obj000 keeps one readable view: any pair from it hits a corrupt file
        (views / "obj000" / f"{v:03d}.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    from zero123.train.loop import train

    cfg = Config.load(tiny_config(tmp_path, data={"cache_latents": cache}, train={"max_steps": 3, "batch_size": 4}))
    with caplog.at_level("WARNING", logger="zero123.train"):
        res = train(views, cfg, tmp_path / "run", show_progress=False, log=lambda m: None)
    assert res.step == 3 and np.isfinite(res.final_loss)
    assert res.skipped_views >= 1
    assert "skipping unreadable view obj000/" in caplog.text


def _shrunk(path: Path, tmp_path: Path, **model) -> Config:
    """A shipped config cut to 2 tiny steps (same keys, so it still exercises the file)."""
    data = yaml.safe_load(path.read_text())
    data["model"].update(model)
    data["data"].update(image_size=64, num_sample_pairs=1)
    data["vae_stage"].update(steps=1, batch_size=2)
    data["train"].update(max_steps=2, batch_size=2, grad_accum=1, checkpoint_every=1, sample_every=2, sample_steps=2)
    return Config.from_dict(data)


@pytest.mark.parametrize("name", ["small-from-scratch.yaml", "finetune-zero123.yaml", "finetune-sd-image-variations.yaml"])
def test_shipped_configs_run_two_steps(tmp_path, name, tiny_model_dir):
    """Every shipped config trains (cut to 2 steps); fine-tune configs start from tiny models."""
    from zero123.models.factory import build_components
    from zero123.train.loop import train

    views = make_views_release(tmp_path / "data", n_objects=2, size=64)
    path = REPO / "configs" / name
    if name == "finetune-zero123.yaml":
        import zero123.models.cc_projection  # noqa: F401

        cfg = _shrunk(path, tmp_path, init_path=str(tiny_model_dir))
    elif name == "finetune-sd-image-variations.yaml":
        comps = build_components("tiny", overrides={"unet": {"in_channels": 4}})
        for k in ("unet", "vae", "image_encoder"):
            comps[k].save_pretrained(tmp_path / "sdiv" / k)
        cfg = _shrunk(path, tmp_path, init_path=str(tmp_path / "sdiv"))
    else:
        cfg = _shrunk(path, tmp_path)
    res = train(views, cfg, tmp_path / "run", show_progress=False, log=lambda m: None)
    assert res.step == 2 and np.isfinite(res.final_loss)
    assert (tmp_path / "run" / "samples" / "step-0000002.png").is_file()


def test_vae_chroma_term_is_colour_only_and_validated():
    """The VAE stage's colour term sees hue, not brightness: a grey image has zero chroma, and an
    image and the same image brightened by a constant have equal chroma."""
    from zero123.train.config import ConfigError, VAEStageConfig
    from zero123.train.vae_stage import _chroma

    grey = torch.full((1, 3, 4, 4), 0.3)
    assert torch.count_nonzero(_chroma(grey)) == 0
    img = torch.rand(2, 3, 4, 4)
    assert torch.allclose(_chroma(img), _chroma(img + 0.25), atol=1e-6)
    assert torch.allclose(_chroma(img).sum(dim=1), torch.zeros(2, 4, 4), atol=1e-6)
    with pytest.raises(ConfigError, match="chroma_weight"):
        VAEStageConfig(chroma_weight=-1.0)


def test_min_snr_weights_cap_the_low_noise_steps():
    """Min-SNR-gamma (train.snr_gamma): weight min(SNR, gamma) / SNR, with SNR = a / (1 - a) from
    the training schedule's alphas_cumprod: 1 at noisy steps, gamma / SNR at clean ones."""
    from diffusers import DDPMScheduler

    from zero123.models.factory import SCHEDULER_CONFIG
    from zero123.train.loop import min_snr_weights

    a = DDPMScheduler.from_config(SCHEDULER_CONFIG).alphas_cumprod
    t = torch.tensor([0, 10, 200, 500, 999])
    w = min_snr_weights(a, t, 5.0)
    snr = (a[t] / (1 - a[t])).double()
    expected = torch.where(snr > 5.0, 5.0 / snr, torch.ones_like(snr)).float()
    torch.testing.assert_close(w, expected)
    assert w[0] < 0.01 and w[-1] == 1.0  # t=0 is nearly clean (SNR ~ 1000); t=999 is pure noise
    assert torch.all(w[1:] >= w[:-1])  # monotone in t
    with pytest.raises(ConfigError, match="train.snr_gamma"):
        Config.from_dict({"train": {"snr_gamma": 0, "train_image_encoder": True}})


def test_snr_gamma_changes_the_loss_not_the_sampled_batch(tmp_path, views):
    """The same seed and data give the same first-step noise and timesteps; only the weighting
    differs. With gamma = 1e-3 every weight is below 1 (SNR >= 0.0047 even at t = 999), so the
    weighted loss is strictly smaller."""
    from zero123.train.loop import train

    losses = {}
    for gamma in (None, 1e-3):
        cfg = Config.load(tiny_config(tmp_path, f"g{gamma}.yaml", train={"max_steps": 1, "snr_gamma": gamma,
                                                                          "log_every": 1}))
        losses[gamma] = train(views, cfg, tmp_path / f"run{gamma}", show_progress=False).final_loss
    assert np.isfinite(losses[1e-3]) and 0 < losses[1e-3] < losses[None]


def test_v_prediction_run_trains_on_v_and_exports_a_v_model(tmp_path, views):
    """model.prediction_type = v_prediction: the loss target is v (another loss than eps on the
    same first batch), the run's scheduler says so, and the exported pipeline samples as v."""
    from zero123.pipeline import Zero123Pipeline
    from zero123.train.loop import train

    cfg_v = Config.load(tiny_config(tmp_path, "v.yaml", model={"prediction_type": "v_prediction"},
                                    train={"max_steps": 1, "log_every": 1}))
    cfg_eps = Config.load(tiny_config(tmp_path, "eps.yaml", train={"max_steps": 1, "log_every": 1}))
    loss_v = train(views, cfg_v, tmp_path / "v", show_progress=False).final_loss
    loss_eps = train(views, cfg_eps, tmp_path / "eps", show_progress=False).final_loss
    assert np.isfinite(loss_v) and abs(loss_v - loss_eps) > 1e-4
    sched = json.loads((tmp_path / "v" / "base" / "scheduler" / "scheduler_config.json").read_text())
    assert sched["prediction_type"] == "v_prediction"
    assert run_cli("export", tmp_path / "v", "-o", tmp_path / "model").exit_code == 0
    pipe = Zero123Pipeline.from_pretrained(tmp_path / "model")
    assert pipe.prediction_type == "v_prediction"
    with pytest.raises(ConfigError, match="model.prediction_type"):
        Config.from_dict({"model": {"prediction_type": "x0"}, "train": {"train_image_encoder": True}})


def test_min_snr_weights_for_v_prediction_weigh_the_x0_error_like_epsilon():
    """For v the weight is min(SNR, gamma) / (SNR + 1): times the v loss's own x0 weight (SNR + 1)
    it gives the same x0 weight, min(SNR, gamma), as the epsilon form times SNR."""
    from diffusers import DDPMScheduler

    from zero123.models.factory import SCHEDULER_CONFIG
    from zero123.train.loop import min_snr_weights

    a = DDPMScheduler.from_config(SCHEDULER_CONFIG).alphas_cumprod
    t = torch.tensor([0, 100, 300, 700, 999])
    snr = (a[t] / (1 - a[t])).double()
    x0_eps = min_snr_weights(a, t, 5.0, "epsilon").double() * snr
    x0_v = min_snr_weights(a, t, 5.0, "v_prediction").double() * (snr + 1)
    torch.testing.assert_close(x0_v, x0_eps, rtol=1e-5, atol=1e-8)
    torch.testing.assert_close(x0_v, snr.clamp(max=5.0), rtol=1e-5, atol=1e-8)
    with pytest.raises(ValueError, match="prediction_type"):
        min_snr_weights(a, t, 5.0, "sample")


# --------------------------------------------------------------------------- a new user's friction (issue 10)
def test_failed_start_writes_nothing_and_a_corrected_rerun_works(tmp_path, views):
    """Bad data: refused before RUN_DIR/config.yaml is written. A start that fails after it (the model
    to fine-tune is missing) leaves no run behind: the corrected command runs, with or without --resume."""
    run = tmp_path / "run"
    r = run_cli("train", "--data", tmp_path / "no-data", "--config", tiny_config(tmp_path), "--out", run, "--no-progress")
    assert r.exit_code == 2 and "no such dataset folder" in r.output, r.output
    assert not (run / "config.yaml").exists()
    bad = tiny_config(tmp_path, "bad.yaml", model={"init": "zero123", "init_path": str(tmp_path / "missing-model")},
                      train={"train_image_encoder": False})
    r = run_cli("train", "--data", views, "--config", bad, "--out", run, "--no-progress")
    assert r.exit_code == 2 and "no such file or folder" in r.output, r.output
    good = tiny_config(tmp_path, "good.yaml", train={"max_steps": 1})
    r = run_cli("train", "--data", views, "--config", good, "--out", run, "--resume", "--no-progress")
    assert r.exit_code == 0, r.output
    assert Config.load(run / "config.yaml") == Config.load(good)


def test_interrupted_vae_stage_resumes_to_the_same_vae(tmp_path, views):
    """A signal in the VAE stage saves its progress; resuming gives the VAE an uninterrupted stage gives."""
    from zero123.models.factory import build_components
    from zero123.train.config import VAEStageConfig
    from zero123.train.data import ViewSource, open_dataset
    from zero123.train.vae_stage import train_vae

    cfg = VAEStageConfig(steps=4, batch_size=2, log_every=100)
    ds = open_dataset(views, split="all", image_size=32, seed=0, camera_embedding="relative_radius")
    quiet = dict(seed=0, log=lambda m: None)
    straight = build_components("tiny", seed=0)["vae"]
    assert train_vae(straight, ViewSource(ds, "relative_radius", use_cache=True), cfg, **quiet) is not None
    resumed = build_components("tiny", seed=0)["vae"]
    calls = iter(range(100))
    state = tmp_path / "vae_stage"
    stopped = train_vae(resumed, ViewSource(ds, "relative_radius", use_cache=True), cfg, state_dir=state,
                        should_stop=lambda: next(calls) >= 2, **quiet)
    assert stopped is None and (state / "state.json").is_file()
    assert json.loads((state / "state.json").read_text())["step"] == 2
    assert train_vae(resumed, ViewSource(ds, "relative_radius", use_cache=True), cfg, state_dir=state, **quiet) is not None
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, atol=0, rtol=0, msg=k)
    assert straight.config.scaling_factor == resumed.config.scaling_factor


def test_export_of_an_unfinished_run_says_what_to_do(tmp_path, views):
    run = tmp_path / "run"
    run.mkdir()
    r = run_cli("export", run, "-o", tmp_path / "m")
    assert r.exit_code == 2 and "not a training run folder" in r.output
    Config.load(tiny_config(tmp_path)).save(run / "config.yaml")
    (run / "vae_stage").mkdir()
    r = run_cli("export", run, "-o", tmp_path / "m")
    assert r.exit_code == 2 and "stopped before its first checkpoint" in r.output and "--resume" in r.output, r.output
    (run / "base").mkdir()
    r = run_cli("export", run, "-o", tmp_path / "m")
    assert r.exit_code == 2 and "no checkpoint yet" in r.output and "--resume" in r.output, r.output


def test_a_run_folder_as_model_says_export_it_first(tmp_path, views, tiny_image):
    run = tmp_path / "run"
    assert run_cli("train", "--data", views, "--config", tiny_config(tmp_path, train={"max_steps": 1}), "--out", run,
                   "--no-progress").exit_code == 0
    image = tmp_path / "in.png"
    tiny_image.save(image)
    r = run_cli("nvs", image, "--model", run, "--device", "cpu", "-o", tmp_path / "views")
    assert r.exit_code == 2 and "is a training run" in r.output and f"zero123 export {run} -o" in r.output, r.output


def test_readme_renders_the_dataset_at_the_size_it_trains_at():
    """Before: the README rendered at 256 px for a 64 px config (trained fine, 16x the render work)."""
    import re

    readme = (REPO / "README.md").read_text()
    render = re.search(r"zero123 render-dataset .*--out (\S+) .*--size (\d+)", readme)
    config = re.search(rf"zero123 train --data {re.escape(render.group(1))} --config (\S+)", readme).group(1)
    assert Config.load(REPO / config).data.image_size == int(render.group(2))
