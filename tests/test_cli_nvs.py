"""``zero123 nvs`` and ``zero123 create-random`` on a tiny random model; CLI error helper."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from zero123.cli.__main__ import app
from zero123.cli._common import broadcast_lists, parse_device, parse_dtype, parse_float_list, run_cli_errors

runner = CliRunner()


@pytest.fixture
def image_path(tmp_path, tiny_image):
    path = tmp_path / "in.png"
    tiny_image.save(path)
    return path


def test_nvs_writes_views_and_contact_sheet(tiny_model_dir, image_path, tmp_path):
    out = tmp_path / "out"
    args = ["nvs", str(image_path), "--azimuth", "0,90", "--elevation", "10", "--model", str(tiny_model_dir),
            "--steps", "3", "--device", "cpu", "--no-preprocess", "-o", str(out), "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout[res.stdout.index("{"):])
    assert [v["azimuth"] for v in report["views"]] == [0.0, 90.0]
    assert all(v["elevation"] == 10.0 and v["radius"] == 1.0 for v in report["views"])
    for v in report["views"]:
        im = Image.open(v["path"])
        assert im.size == (64, 64) and im.mode == "RGB"
    sheet = Image.open(report["contact_sheet"])
    assert sheet.width > 3 * 64  # input + 2 views side by side
    assert (out / "input.png").is_file()
    # no temporary files left behind by the atomic writes
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    # same seed -> same pixels; view i uses seed + i, so the 90-degree view equals a single-view run at seed 1
    res2 = runner.invoke(app, ["nvs", str(image_path), "--azimuth", "90", "--elevation", "10", "--model", str(tiny_model_dir),
                               "--steps", "3", "--device", "cpu", "--no-preprocess", "--seed", "1", "-o", str(tmp_path / "o2"), "--json"])
    assert res2.exit_code == 0, res2.output
    single = json.loads(res2.stdout[res2.stdout.index("{"):])["views"][0]["path"]
    diff = np.abs(np.asarray(Image.open(single), dtype=int) - np.asarray(Image.open(report["views"][1]["path"]), dtype=int))
    assert diff.max() <= 1


def test_nvs_with_preprocessing(tiny_model_dir, image_path, tmp_path):
    res = runner.invoke(app, ["nvs", str(image_path), "--model", str(tiny_model_dir), "--steps", "2", "--device", "cpu",
                              "-o", str(tmp_path / "o"), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout[res.stdout.index("{"):])["preprocess"] == "alpha"


@pytest.mark.parametrize(
    "extra,match",
    [
        (["--azimuth", "0,x"], "--azimuth"),
        (["--azimuth", "1,2", "--elevation", "1,2,3"], "same length"),
        (["--elevation", "nan"], "finite"),
        (["--dtype", "fp16", "--device", "cpu"], "fp16 is not supported on CPU"),
        (["--dtype", "int8"], "--dtype"),
        (["--steps", "1"], "--steps"),
    ],
)
def test_nvs_bad_options_exit_2_with_one_line(tiny_model_dir, image_path, tmp_path, extra, match):
    res = runner.invoke(app, ["nvs", str(image_path), "--model", str(tiny_model_dir), "-o", str(tmp_path / "o"), *extra])
    assert res.exit_code == 2
    assert res.stderr.startswith("error: ") and match in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_nvs_missing_image_and_model(tiny_model_dir, image_path, tmp_path):
    res = runner.invoke(app, ["nvs", str(tmp_path / "missing.png"), "--model", str(tiny_model_dir)])
    assert res.exit_code == 2 and res.stderr.startswith("error: ")
    res = runner.invoke(app, ["nvs", str(image_path), "--model", str(tmp_path / "no-model"), "--no-preprocess", "--device", "cpu"])
    assert res.exit_code == 2 and res.stderr.startswith("error: ")


def test_create_random(tmp_path):
    out = tmp_path / "m"
    res = runner.invoke(app, ["create-random", "-o", str(out), "--seed", "3", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout[res.stdout.index("{"):])
    assert report["preset"] == "tiny" and report["image_size"] == 64
    index = json.loads((out / "model_index.json").read_text())
    assert index["_class_name"] == "Zero123Pipeline"
    from zero123 import Zero123Pipeline

    assert Zero123Pipeline.from_pretrained(out).cc_projection.config.camera_embedding == "relative_radius"
    res = runner.invoke(app, ["create-random", "-o", str(out)])
    assert res.exit_code == 2 and "already exists" in res.stderr
    res = runner.invoke(app, ["create-random", "-o", str(tmp_path / "x"), "--preset", "huge"])
    assert res.exit_code == 2 and "--preset" in res.stderr


def test_help_lists_commands():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0 and "nvs" in res.stdout and "create-random" in res.stdout
    res = runner.invoke(app, ["nvs", "--help"])
    assert res.exit_code == 0 and "--azimuth" in res.stdout and "--no-preprocess" in res.stdout


# ---------------------------------------------------------------- helpers
def test_parse_float_list_and_broadcast():
    assert parse_float_list("0,90, 180", "--azimuth") == [0.0, 90.0, 180.0]
    with pytest.raises(ValueError, match="--azimuth"):
        parse_float_list("0,,1", "--azimuth")
    assert broadcast_lists(azimuth=[0.0, 90.0], elevation=[10.0]) == [
        {"azimuth": 0.0, "elevation": 10.0}, {"azimuth": 90.0, "elevation": 10.0}]


def test_parse_device_and_dtype():
    import torch

    cpu = parse_device("cpu")
    assert cpu.type == "cpu"
    assert parse_dtype("auto", cpu) == torch.float32 and parse_dtype("bf16", cpu) == torch.bfloat16
    with pytest.raises(ValueError, match="--device"):
        parse_device("tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            parse_device("cuda")


def test_run_cli_errors_turns_user_errors_into_exit_2(capsys):
    @run_cli_errors
    def cmd(x: int) -> int:
        raise ValueError(f"x must be positive,\ngot {x}")

    with pytest.raises(typer.Exit) as e:
        cmd(-1)
    assert e.value.exit_code == 2
    assert capsys.readouterr().err == "error: x must be positive, got -1\n"


# ---------------------------------------------------------------- the photo path (issue 10 item 5) and early checks
def test_segment_option_cutout_and_method_printed(tiny_model_dir, tmp_path):
    """--segment picks the method; cutout.png is the input at full size; the method used is printed."""
    rgb = np.full((90, 120, 3), 240, np.uint8)
    rgb[30:60, 40:80] = (200, 30, 30)
    path = tmp_path / "photo.png"
    Image.fromarray(rgb).save(path)
    out = tmp_path / "o"
    res = runner.invoke(app, ["nvs", str(path), "--model", str(tiny_model_dir), "--steps", "2", "--device", "cpu",
                              "--segment", "threshold", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "segmentation method 'threshold'" in res.stdout and "cutout.png" in res.stdout
    cut = Image.open(out / "cutout.png")
    assert cut.size == (120, 90) and cut.mode == "RGBA"
    alpha = np.asarray(cut)[..., 3]
    assert alpha[45, 60] == 255 and alpha[5, 5] == 0


@pytest.mark.parametrize("extra,match", [
    (["--segment", "grabcut", "--no-preprocess"], "contradict"),
    (["--segment", "carvekit"], "--segment must be one of"),
    (["--elevation", "200"], "--elevation"),
    (["--azimuth", "1e9"], "--azimuth"),
    (["--cond-elevation", "nan"], "--cond-elevation"),
])
def test_more_bad_options(image_path, tmp_path, extra, match):
    res = runner.invoke(app, ["nvs", str(image_path), "--model", str(tmp_path / "no-model"), "-o", str(tmp_path / "o"), *extra])
    assert res.exit_code == 2 and res.stderr.startswith("error: ") and match in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_unwritable_out_fails_before_the_model_loads(image_path, tmp_path):
    """Before: -o was checked only after sampling. Now it is checked first: with a missing model
    too, the error is about -o/--out."""
    (tmp_path / "file").write_text("x")
    res = runner.invoke(app, ["nvs", str(image_path), "--model", str(tmp_path / "no-model"), "--device", "cpu",
                              "-o", str(tmp_path / "file" / "views")])
    assert res.exit_code == 2 and "-o/--out" in res.stderr and "not a folder" in res.stderr, res.stderr
