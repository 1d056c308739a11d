"""Nothing lost (issue 5 item 2): exact resume, atomic checkpoints under a full disk, SIGTERM, and
`accelerate launch --num_processes 2` on CPU (item 4). docs/conventions.md, Training recipe (EMA, optimizer) state is
part of what must survive."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from test_train import make_views_release, tiny_config
from zero123.train.config import Config


def _weights(ckpt: Path) -> dict[str, torch.Tensor]:
    out = {}
    for name in ("unet", "unet_ema", "cc_projection", "image_encoder"):
        for k, v in load_file(str(ckpt / f"{name}.safetensors")).items():
            out[f"{name}.{k}"] = v
    return out


def test_resume_is_exact(tmp_path):
    """2N straight steps == N steps, stop, resume N more: weights, EMA equal to 1e-6 (CPU)."""
    from zero123.train.loop import train

    data = make_views_release(tmp_path / "data")
    quiet = dict(show_progress=False, log=lambda m: None)
    # grad_accum 2 and warm-up keep the LR schedule and accumulation in the picture
    base = dict(train={"max_steps": 4, "checkpoint_every": 100, "batch_size": 2, "grad_accum": 2}, optim={"warmup_steps": 3})
    straight = train(data, Config.load(tiny_config(tmp_path, "a.yaml", **base)), tmp_path / "straight", **quiet)
    half = dict(base, train=dict(base["train"], max_steps=2))
    first = train(data, Config.load(tiny_config(tmp_path, "b.yaml", **half)), tmp_path / "resumed", **quiet)
    assert first.step == 2
    second = train(data, Config.load(tiny_config(tmp_path, "a.yaml", **base)), tmp_path / "resumed", resume=True, **quiet)
    assert second.step == 4
    a, b = _weights(straight.last_checkpoint), _weights(second.last_checkpoint)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=0, msg=k)
    assert not torch.equal(a["unet.conv_in.weight"], _weights(first.last_checkpoint)["unet.conv_in.weight"])
    sa = torch.load(straight.last_checkpoint / "optimizer.pt", weights_only=True)
    sb = torch.load(second.last_checkpoint / "optimizer.pt", weights_only=True)
    for k, st in sa["state"].items():
        torch.testing.assert_close(st["exp_avg_sq"], sb["state"][k]["exp_avg_sq"], atol=1e-9, rtol=1e-5)


def test_full_disk_during_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    """An OSError (ENOSPC) in the middle of writing a checkpoint leaves the previous one intact,
    leaves no partial folder, and prunes nothing."""
    from zero123.models.factory import build_components
    from zero123.train import checkpoint as ck

    comps = build_components("tiny")
    kw = dict(unet=comps["unet"], cc_projection=comps["cc_projection"], ema_state=dict(comps["unet"].named_parameters()),
              ema_num_updates=1, optimizer_state={"state": {}, "param_groups": []}, lr_scheduler_state={},
              rng_states=[torch.Generator().get_state()], keep_last=1)
    first = ck.save_checkpoint(tmp_path, 1, **kw)
    before = {p.name: p.read_bytes() for p in first.iterdir()}

    real_save = torch.save

    def failing_save(obj, f, *a, **k):
        if str(f).endswith("lr_scheduler.pt"):
            real_save(obj, f, *a, **k)  # a partial write happened...
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="No space left"):
        ck.save_checkpoint(tmp_path, 2, **kw)
    assert [p.name for p in ck.checkpoint_dirs(tmp_path)] == ["step-0000001"]
    assert {p.name: p.read_bytes() for p in first.iterdir()} == before
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["step-0000001"]  # no temp folder left
    ck.load_checkpoint(first)  # still loads


def _cli() -> list[str]:
    return [sys.executable, "-m", "zero123.cli.__main__"]


def _train_and_sigterm(tmp_path, cfg: Path, trigger: str, timeout_after: float = 120, resume: bool = False) -> tuple[int, str, Path]:
    """Run `zero123 train` in a subprocess, send SIGTERM once a line starts with ``trigger``;
    return (exit code, all output, run folder)."""
    data = tmp_path / "data" if resume else make_views_release(tmp_path / "data", n_objects=2)
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--config", str(cfg), "--out", str(run), "--no-progress"] + (["--resume"] if resume else [])
    proc = subprocess.Popen(_cli() + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        deadline = time.time() + 240
        for line in proc.stdout:
            lines.append(line)
            if line.startswith(trigger):
                proc.send_signal(signal.SIGTERM)
                break
            assert time.time() < deadline, "".join(lines)
        rest, _ = proc.communicate(timeout=timeout_after)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, "".join(lines) + rest, run


def test_sigterm_writes_checkpoint_before_exit(tmp_path):
    cfg = tiny_config(tmp_path, train={"max_steps": 100000, "checkpoint_every": 100000, "log_every": 1})
    code, out, run = _train_and_sigterm(tmp_path, cfg, "step 2/")
    assert code == 130, out
    from zero123.train.checkpoint import latest_checkpoint

    ckpt = latest_checkpoint(run)
    assert ckpt is not None and int(ckpt.name.split("-")[1]) >= 2, out
    assert "--resume" in out


def test_sigterm_during_vae_stage_keeps_its_progress(tmp_path):
    """A signal in the from-scratch VAE stage stops it at the next VAE step (not after the stage):
    exit 130, no half-trained base model, the stage's progress saved in RUN/vae_stage, and --resume
    continues the stage from there instead of starting it again."""
    cfg = tiny_config(tmp_path, vae_stage={"steps": 100000, "log_every": 1})
    code, out, run = _train_and_sigterm(tmp_path, cfg, "vae step 2/", timeout_after=60)
    assert code == 130, out
    assert "during the VAE stage" in out and "--resume" in out
    assert not (run / "base").exists()
    import json

    saved = json.loads((run / "vae_stage" / "state.json").read_text())["step"]
    assert saved >= 2
    code, out, _ = _train_and_sigterm(tmp_path, cfg, f"vae step {saved + 1}/", timeout_after=60, resume=True)
    assert code == 130 and f"vae stage resumed at step {saved}/" in out, out
    assert json.loads((run / "vae_stage" / "state.json").read_text())["step"] > saved


@pytest.mark.slow
def test_accelerate_launch_two_cpu_processes(tmp_path):
    """`accelerate launch --num_processes 2` on CPU (gloo), then resume in the same layout."""
    if shutil.which("accelerate") is None:
        pytest.skip("accelerate CLI not on PATH")
    data = make_views_release(tmp_path / "data", n_objects=3)
    cfg = tiny_config(tmp_path, train={"max_steps": 2, "checkpoint_every": 1, "batch_size": 1})
    run = tmp_path / "run"
    # on a CPU-only machine `--multi_gpu` selects accelerate's torchrun launcher (gloo backend);
    # `--cpu` with several processes would need MPI
    launch = ["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "zero123.cli.__main__"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run(launch + ["train", "--data", str(data), "--config", str(cfg), "--out", str(run), "--no-progress"],
                       capture_output=True, text=True, timeout=400, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    st = torch.load(run / "checkpoints" / "step-0000002" / "rng.pt", weights_only=True)
    assert len(st) == 2 and not torch.equal(st[0], st[1])  # one RNG stream per process
    assert r.stdout.count("done: step 2") == 1  # the summary comes from the main process only
