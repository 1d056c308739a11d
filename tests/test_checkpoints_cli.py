"""``zero123 convert`` / ``zero123 info`` and name resolution through the local HF cache (docs/conventions.md, Checkpoint formats).
Nothing here touches the network: lookups run with ``local_files_only=True`` or a fake cache."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from typer.testing import CliRunner

from checkpoint_fixtures import TINY_OVERRIDES, original_state_dict, write_layout, write_lightning_ckpt
from zero123.checkpoints import KNOWN, load_components, resolve
from zero123.cli.__main__ import app

torch.set_num_threads(1)
runner = CliRunner()


@pytest.fixture(scope="module")
def weights():
    from zero123.models.factory import build_components

    return build_components("tiny", seed=0)


@pytest.fixture(scope="module")
def ldm_file(weights, tmp_path_factory):
    return write_lightning_ckpt(tmp_path_factory.mktemp("ldm") / "stable_zero123.ckpt", original_state_dict(weights))


@torch.no_grad()
def _eps(pipe):
    g = torch.Generator().manual_seed(1)
    cond = pipe.encode_image(torch.rand(1, 3, 64, 64, generator=g) * 2 - 1)
    x = torch.randn(1, 4, 8, 8, generator=g)
    return pipe.predict_noise(x, 501, cond, torch.tensor([[0.2, 0.0, 1.0, 1.1]]), guidance_scale=3.0)


def test_convert_original_round_trips_to_our_folder(ldm_file, weights, tmp_path):
    """Original .ckpt -> our safetensors folder -> from_pretrained: same numbers, camera kind kept."""
    from zero123.pipeline import Zero123Pipeline

    out = tmp_path / "ours"
    r = runner.invoke(app, ["convert", str(ldm_file), "-o", str(out), "--config-overrides", json.dumps(TINY_OVERRIDES)])
    assert r.exit_code == 0, r.output
    assert "camera embedding: cond_polar" in r.output  # inferred from the file name stable_zero123
    assert list(out.glob("unet/*.safetensors")) and not list(out.rglob("*.bin"))
    pipe = Zero123Pipeline.from_pretrained(out)
    assert pipe.cc_projection.config.camera_embedding == "cond_polar"
    for name in ("unet", "vae", "image_encoder", "cc_projection"):
        ref, got = weights[name].state_dict(), getattr(pipe, name).state_dict()
        assert ref.keys() == got.keys() and all(torch.equal(ref[k], got[k]) for k in ref), name
    # bit-identical weights; the outputs may still differ by float rounding because transformers'
    # loader leaves parameters at other memory alignments (different SIMD reduction order)
    assert (_eps(pipe) - _eps(Zero123Pipeline(**weights))).abs().max() < 1e-5
    again = runner.invoke(app, ["convert", str(ldm_file), "-o", str(out)])
    assert again.exit_code == 2 and "error:" in again.output and "--overwrite" in again.output


def test_convert_half_and_layout_a(weights, tmp_path):
    src = write_layout(tmp_path / "kxic", weights, "A", bin_weights=True)
    r = runner.invoke(app, ["convert", str(src), "-o", str(tmp_path / "h"), "--half", "--camera-embedding", "relative_radius"])
    assert r.exit_code == 0, r.output
    from safetensors import safe_open

    assert load_components(tmp_path / "h").format == "zero123"
    for sub in ("unet", "vae", "cc_projection"):
        (f,) = (tmp_path / "h" / sub).glob("*.safetensors")
        with safe_open(str(f), "pt") as st:
            assert {st.get_tensor(k).dtype for k in st.keys()} == {torch.float16}, sub


def test_info_reports_format_counts_ema_dtype(ldm_file, weights):
    r = runner.invoke(app, ["info", str(ldm_file), "--json", "--config-overrides", json.dumps(TINY_OVERRIDES)])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["format"] == "ldm" and d["ema"] == "present" and d["camera_embedding"] == "cond_polar"
    assert d["in_channels"] == 8 and d["prediction_type"] == "epsilon"  # every original file is eps (docs/conventions.md, Sampling)
    assert d["components"]["unet"]["parameters"] == sum(p.numel() for p in weights["unet"].parameters())
    assert d["components"]["vae"]["dtype"] == "float32"
    table = runner.invoke(app, ["info", str(ldm_file), "--config-overrides", json.dumps(TINY_OVERRIDES)])
    assert table.exit_code == 0 and "cc_projection" in table.output


def test_cli_errors_are_one_line_exit_2(tmp_path):
    r = runner.invoke(app, ["info", str(tmp_path / "missing.ckpt")])
    assert r.exit_code == 2 and r.output.startswith("error: ") and "Traceback" not in r.output
    r = runner.invoke(app, ["convert", "x.ckpt", "-o", str(tmp_path / "o"), "--config-overrides", "[1"])
    assert r.exit_code == 2 and "--config-overrides" in r.output


def test_known_name_resolves_from_local_hf_cache(ldm_file, weights, tmp_path):
    """A known name is found in the Hugging Face cache layout (models--org--name/snapshots/<rev>/)."""
    cache = tmp_path / "hub"
    commit = "0" * 40
    repo = cache / "models--stabilityai--stable-zero123"
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    shutil.copy(ldm_file, repo / "snapshots" / commit / "stable_zero123.ckpt")
    path = resolve("stable-zero123", cache_dir=cache, local_files_only=True)
    assert path.name == "stable_zero123.ckpt"
    loaded = load_components("stable-zero123", cache_dir=cache, local_files_only=True, config_overrides=TINY_OVERRIDES)
    assert loaded.camera_embedding == "cond_polar"
    # a diffusers-folder repo id
    folder = cache / "models--bennyguo--zero123-diffusers"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    write_layout(folder / "snapshots" / commit, weights, "B")
    loaded = load_components("bennyguo/zero123-diffusers", cache_dir=cache, local_files_only=True)
    assert loaded.format == "diffusers_b"


@pytest.mark.parametrize("name", ["zero123-105000", "zero123-165000", "zero123-xl", "stable-zero123", "kxic/zero123-165000",
                                  "bennyguo/zero123-xl-diffusers", "ashawkey/stable-zero123-diffusers",
                                  "cvlab-columbia/zero123-xl"])
def test_absent_known_name_says_where_size_licence_and_how(name, tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        resolve(name, cache_dir=tmp_path, local_files_only=True)
    msg = str(e.value)
    assert "https://huggingface.co/" in msg and "GB" in msg and "licence" in msg and "local path" in msg
    if "stable" in name:
        assert "non-commercial" in msg.lower()


def test_registry_covers_the_published_names():
    for name in ("zero123-105000", "zero123-165000", "zero123-xl", "stable-zero123", "kxic/zero123-105000",
                 "kxic/zero123-165000", "kxic/zero123-xl", "kxic/stable-zero123", "bennyguo/zero123-diffusers",
                 "bennyguo/zero123-xl-diffusers", "ashawkey/zero123-xl-diffusers", "ashawkey/stable-zero123-diffusers"):
        assert name in KNOWN
    assert KNOWN["stable-zero123"].camera_embedding == "cond_polar"
    assert KNOWN["zero123-xl"].camera_embedding == "relative_radius"


def test_unknown_name_lists_known_names(tmp_path):
    with pytest.raises(FileNotFoundError, match="Known names: .*zero123-105000"):
        resolve("not-a-model", cache_dir=tmp_path, local_files_only=True)


# ---------------------------------------------------------------- a new user's friction (issue 10)
def test_offline_hub_name_fails_at_once_with_trust_pickle_advice(tmp_path, monkeypatch):
    """Before: five network retries with back-off (28 s) ahead of the error. Now one quick reachability
    check, no download attempt, and the advice for a Lightning .ckpt names trust_pickle=True."""
    import socket
    import time

    import huggingface_hub

    def no_network(*a, **k):
        raise OSError("Name or service not known")

    def must_not_download(*a, **k):
        raise AssertionError("the hub client was asked to download although the hub is unreachable")

    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", must_not_download)
    t0 = time.perf_counter()
    with pytest.raises(FileNotFoundError) as e:
        resolve("zero123-105000", cache_dir=tmp_path, local_files_only=False)
    assert time.perf_counter() - t0 < 5
    msg = str(e.value)
    assert "cannot reach" in msg and "trust_pickle=True" in msg and "--trust-pickle" in msg
    with pytest.raises(FileNotFoundError) as e:  # a diffusers folder needs no pickle opt-in
        resolve("kxic/zero123-165000", cache_dir=tmp_path, local_files_only=False)
    assert "trust_pickle" not in str(e.value)


def test_random_bytes_ckpt_is_not_called_a_pickle(tmp_path):
    """Before: 'contains pickled Python objects ... pass trust_pickle=True'. Now: not a checkpoint."""
    import numpy as np

    path = tmp_path / "noise.ckpt"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    r = runner.invoke(app, ["info", str(path)])
    assert r.exit_code == 2 and "is not a PyTorch checkpoint" in r.stderr, r.output
    assert "trust" not in r.stderr and "pickled Python objects" not in r.stderr
    path.write_bytes(b"\x80\x02" + path.read_bytes()[2:])  # pickle protocol header, then noise
    r = runner.invoke(app, ["info", str(path)])
    assert r.exit_code == 2 and "is corrupt" in r.stderr and "trust" not in r.stderr, r.output


def test_info_reports_the_stored_dtype_of_a_folder(tmp_path):
    """The bundled model is stored in float16; the loader casts to float32, info must say float16."""
    r = runner.invoke(app, ["info", "bundled", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert {c["dtype"] for n, c in d["components"].items() if n != "scheduler"} == {"float16"}
