"""Evaluation runner and ``zero123 eval nvs`` on fake views_release folders (docs/conventions.md, Cameras, Dataset layout and Evaluation protocols)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from zero123.camera import world_to_cam_from_spherical
from zero123.cli.__main__ import app
from zero123.eval import ViewsFolder, evaluate, get_protocol, parse_targets
from zero123.eval.protocols import EvalProtocol
from zero123.eval.runner import resolve_targets

COND_POLAR, COND_AZ, RADIUS = math.radians(60.0), math.radians(20.0), 1.8
# relative (azimuth, elevation) changes of views 1..5 from view 0: the coordinator's held-out set
RELATIVE = [(90, 0), (180, 0), (270, 0), (0, 30), (0, -30)]


def make_views_release(root: Path, n_objects: int = 3, size: int = 32, same_image: bool = False, seed: int = 0) -> Path:
    """Fake dataset: per object view 0 at (polar 60, az 20), views 1..5 at RELATIVE changes;
    random RGBA PNGs with transparent corners (docs/conventions.md, Dataset layout)."""
    rng = np.random.default_rng(seed)
    for o in range(n_objects):
        folder = root / f"obj{o:02d}"
        folder.mkdir(parents=True)
        base = rng.integers(0, 256, (size, size, 4), dtype=np.uint8)
        poses = [(COND_POLAR, COND_AZ)] + [
            (COND_POLAR - math.radians(el), COND_AZ + math.radians(az)) for az, el in RELATIVE
        ]
        for v, (polar, az) in enumerate(poses):
            img = base.copy() if same_image else rng.integers(0, 256, (size, size, 4), dtype=np.uint8)
            img[..., 3] = 255
            img[:4, :4, 3] = 0
            Image.fromarray(img, "RGBA").save(folder / f"{v:03d}.png")
            np.save(folder / f"{v:03d}.npy", world_to_cam_from_spherical(polar, az, RADIUS))
    return root


def _proto(**kw) -> EvalProtocol:
    return EvalProtocol(split="all", resolution=32, **kw)


# ------------------------------------------------------------------------------------ runner
def test_identity_is_perfect_when_gt_equals_input(tmp_path):
    """The identity baseline (docs/conventions.md, Evaluation protocols): identical views -> PSNR inf, SSIM 1 for every target."""
    data = make_views_release(tmp_path / "d", same_image=True)
    rep = evaluate(ViewsFolder(data, "all"), _proto(), None, tmp_path / "out", progress=False)
    s = rep.summary["identity"]
    assert s["psnr"] == math.inf and s["ssim"] == pytest.approx(1.0)
    assert s["objects"] == 3 and s["views"] == 15 and rep.methods == ["identity"]
    saved = json.loads((tmp_path / "out" / "results.json").read_text())  # strict JSON: inf as a string
    assert saved["summary"]["identity"]["psnr"] == "inf"


def test_identity_finite_on_different_views_and_files_written(tmp_path):
    data = make_views_release(tmp_path / "d")
    out = tmp_path / "out"
    rep = evaluate(ViewsFolder(data, "all"), _proto(), None, out, progress=False)
    s = rep.summary["identity"]
    assert math.isfinite(s["psnr"]) and 0 < s["psnr"] < 20 and -1 <= s["ssim"] < 0.5

    # JSON: protocol, notes (LPIPS skip note), per-object per-view values
    j = json.loads((out / "results.json").read_text())
    assert j["protocol"]["resolution"] == 32 and j["protocol"]["background"] == "white"
    assert any("LPIPS" in n for n in j["notes"]) and any("skimage" in n for n in j["notes"])
    obj = j["objects"][0]
    assert obj["object_id"] == "obj00" and [v["view"] for v in obj["views"]] == [1, 2, 3, 4, 5]
    assert obj["views"][0]["azimuth"] == pytest.approx(90.0) and obj["views"][3]["elevation"] == pytest.approx(30.0)
    per_view_psnr = [v["scores"]["identity"]["psnr"] for v in obj["views"]]
    assert obj["means"]["identity"]["psnr"] == pytest.approx(np.mean(per_view_psnr))

    # CSV: one row per (object, method) + MEAN, consistent with the JSON
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["object_id"] for r in rows] == ["obj00", "obj01", "obj02", "MEAN"]
    assert float(rows[-1]["psnr"]) == pytest.approx(s["psnr"], abs=1e-5)
    assert rows[0]["lpips"] == ""
    per_view = list(csv.DictReader((out / "per_view.csv").open()))
    assert len(per_view) == 15 and per_view[0]["label"] == "az+90"

    # contact sheet: 3 objects x (gt row + prediction row), input + 5 targets
    sheet = Image.open(out / "contact_sheet.png")
    assert sheet.mode == "RGB" and sheet.height > 6 * 32 and sheet.width > 6 * 32


def test_identity_psnr_equals_hand_computed(tmp_path):
    """The identity baseline's PSNR is the PSNR between the composited input and target."""
    data = make_views_release(tmp_path / "d", n_objects=1)
    views = ViewsFolder(data, "all")
    rep = evaluate(views, _proto(targets=(2,)), None, None, progress=False)
    a = np.asarray(views.load_rgb("obj00", 0, 32), dtype=np.float64) / 255
    b = np.asarray(views.load_rgb("obj00", 2, 32), dtype=np.float64) / 255
    assert a[0, 0].tolist() == [1.0, 1.0, 1.0]  # transparent corner composited on white
    expected = 10 * math.log10(1 / np.mean((a - b) ** 2))
    assert rep.objects[0].means["identity"]["psnr"] == pytest.approx(expected)


class _Oracle:
    """A 'model' that returns the ground truth of each requested camera (finds it by pose)."""

    name = "oracle"

    def __init__(self, views, oid_holder):
        self.views, self.oid = views, oid_holder
        self.calls = []

    def __call__(self, input_image, cameras, *, cond_elevation, seed):
        self.calls.append((len(cameras), cond_elevation, seed, input_image.size))
        out = []
        for cam in cameras:
            v = 1 + min(range(5), key=lambda i: abs((cam.azimuth - RELATIVE[i][0] + 180) % 360 - 180)
                        + abs(cam.elevation - RELATIVE[i][1]))
            out.append(np.asarray(self.views.load_rgb(self.oid[0], v, 64), dtype=np.float64) / 255)
        return out


def test_model_reported_beside_identity_with_margin_and_camera_targets(tmp_path):
    """Camera-change targets pick the views at those relative poses (signs: docs/conventions.md, Cameras); the model
    gets the input elevation (90 - polar) and is scored beside identity with the margin."""
    data = make_views_release(tmp_path / "d", n_objects=2)
    views = ViewsFolder(data, "all")
    holder = ["obj00"]
    oracle = _Oracle(views, holder)
    proto = _proto(targets=parse_targets("el:-30,az:90,az:-90,el:30"))
    first = evaluate(views, proto, oracle, None, limit=1, seed=7, progress=False)
    o = first.objects[0]
    assert [v.view for v in o.views] == [5, 1, 3, 4]  # az:-90 matches the 270 view
    assert oracle.calls == [(4, pytest.approx(30.0), 7, (32, 32))]
    assert first.methods == ["identity", "oracle"]
    # oracle predictions at 64 px are resized to the 32 px protocol resolution: close (noise images lose detail) but not exact
    assert first.summary["oracle"]["psnr"] > 15 and first.summary["margin_over_identity"]["psnr"] > 8


def test_missing_camera_targets_reported_and_all_missing_is_error(tmp_path):
    data = make_views_release(tmp_path / "d", n_objects=1)
    views = ViewsFolder(data, "all")
    rep = evaluate(views, _proto(targets=parse_targets("az:90,az:45")), None, None, progress=False)
    assert rep.objects[0].missing_targets == ["az:45"] and len(rep.objects[0].views) == 1
    with pytest.raises(ValueError, match="render ground truth"):
        evaluate(views, _proto(targets=parse_targets("az:45")), None, None, progress=False)


def test_preset_with_too_few_views_is_a_clear_error(tmp_path):
    data = make_views_release(tmp_path / "d", n_objects=1)
    proto = get_protocol("syncdreamer-gso30").replace(resolution=32)
    with pytest.raises(ValueError, match="has only 6 views"):
        evaluate(ViewsFolder(data, "all"), proto, None, None, progress=False)


# ------------------------------------------------------------------------------------ bad data
def test_empty_dataset_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no object folders"):
        ViewsFolder(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no such dataset folder"):
        ViewsFolder(tmp_path / "nope")


def test_png_npy_count_mismatch(tmp_path):
    data = make_views_release(tmp_path / "d", n_objects=2)
    (data / "obj01" / "003.npy").unlink()
    views = ViewsFolder(data, "all")
    with pytest.raises(ValueError, match=r"obj01.*6 \.png and 5 \.npy"):
        evaluate(views, _proto(), None, None, progress=False)


def test_val_split_follows_spec6(tmp_path):
    """valid_paths.json order; last 1% (original rounding: floor(n * 0.99)) is validation."""
    data = make_views_release(tmp_path / "d", n_objects=3)
    (data / "valid_paths.json").write_text(json.dumps(["obj02", "obj00", "obj01"]))
    assert ViewsFolder(data, "val").object_ids == ["obj01"]
    assert ViewsFolder(data, "train").object_ids == ["obj02", "obj00"]


# ------------------------------------------------------------------------------------ CLI
runner = CliRunner()


def _cli(*args):
    return runner.invoke(app, ["eval", "nvs", *map(str, args)])


def test_cli_identity_and_errors(tmp_path):
    data = make_views_release(tmp_path / "d", n_objects=2)
    out = tmp_path / "out"
    r = _cli("--data", data, "--model", "identity", "--split", "all", "--resolution", 32, "-o", out)
    assert r.exit_code == 0, r.output
    assert "| identity |" in r.output and (out / "results.csv").is_file() and (out / "contact_sheet.png").is_file()

    cases = [
        (("--data", tmp_path / "nothing", "--model", "identity"), "no such dataset folder"),
        (("--data", data, "--model", tmp_path / "missing_model"), "--model: no such file or folder"),
        (("--data", data, "--model", "identity", "--protocol", "nope"), "unknown protocol 'nope'"),
        (("--data", data, "--model", "identity", "--targets", "left"), "--targets"),
        (("--data", data, "--model", "identity", "--split", "all", "--targets", "az:33"), "no object has views"),
    ]
    (tmp_path / "empty").mkdir()
    cases.append((("--data", tmp_path / "empty", "--model", "identity"), "no object folders"))
    for args, msg in cases:
        r = _cli(*args, "-o", tmp_path / "o2")
        assert r.exit_code == 2, (args, r.output)
        assert "error:" in r.output and msg in r.output, (args, r.output)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    pytest.importorskip("zero123.pipeline")
    from zero123.models.factory import build_components
    from zero123.pipeline import Zero123Pipeline

    path = tmp_path_factory.mktemp("tiny") / "model"
    Zero123Pipeline(**build_components("tiny", seed=0)).save_pretrained(path)
    return path


def test_cli_tiny_random_model(tmp_path, tiny_model):
    """A tiny random model through the CLI: scored beside identity, same seed -> same numbers."""
    data = make_views_release(tmp_path / "d", n_objects=2)
    outs = []
    for i in range(2):
        out = tmp_path / f"out{i}"
        r = _cli("--data", data, "--model", tiny_model, "--split", "all", "--targets", "az:90,el:30",
                 "--steps", 2, "--resolution", 32, "--limit", 1, "--device", "cpu", "-o", out)
        assert r.exit_code == 0, r.output
        outs.append(json.loads((out / "results.json").read_text()))
    j = outs[0]
    assert j["methods"] == ["identity", "model"] and j["summary"]["model"]["objects"] == 1
    assert j["settings"]["steps"] == 2 and j["protocol"]["targets"] == ["az:90", "el:30"]
    assert isinstance(j["summary"]["model"]["psnr"], float) and "margin_over_identity" in j["summary"]
    assert outs[0]["objects"][0]["means"] == outs[1]["objects"][0]["means"]


# ------------------------------------------------------------------------------------ test sets
def test_render_relative_testset_is_scored_at_exact_changes(tmp_path):
    """Views 1..5 of a rendered test set are at exactly az 90/180/270, el +30/-30 from view 0
    (the relative pose of the stored matrices, docs/conventions.md, Cameras), and `eval nvs` picks them up by default."""
    from zero123.eval.testset import render_relative_testset

    data = tmp_path / "ts"
    names = render_relative_testset(data, 1, image_size=32, progress=False)
    views = ViewsFolder(data, "all")
    assert views.object_ids == names and views.num_views(names[0]) == 6
    targets, missing = resolve_targets(
        views, EvalProtocol(targets=parse_targets("az:90,az:180,az:270,el:30,el:-30")), names[0])
    assert missing == [] and [v for v, _, _ in targets] == [1, 2, 3, 4, 5]
    assert all(abs(t.distance_deg(c)) < 1e-6 for t, (_, c, _) in zip(parse_targets("az:90,az:180,az:270,el:30,el:-30"), targets))
    alpha = np.asarray(Image.open(data / names[0] / "000.png"))[..., 3]
    assert alpha.max() == 255 and alpha.min() == 0  # an object on a transparent background
    assert json.loads((data / "testset.json").read_text())["max_parts"] == 7  # the default object complexity

    out = tmp_path / "out"
    r = _cli("--data", data, "--model", "identity", "--resolution", 32, "-o", out)
    assert r.exit_code == 0, r.output
    j = json.loads((out / "results.json").read_text())
    assert j["protocol"]["split"] == "all" and j["protocol"]["targets"] == ["az:90", "az:180", "az:270", "el:30", "el:-30"]


def test_render_testset_cli_object_complexity(tmp_path):
    """`eval render-testset --min-parts/--max-parts/--texture-probability` renders the held-out
    objects like the training set's and records the settings; bad values are clear errors."""
    out = tmp_path / "ts"
    r = runner.invoke(app, ["eval", "render-testset", "-o", str(out), "--count", "1", "--size", "32",
                            "--min-parts", "2", "--max-parts", "4", "--texture-probability", "0.25"])
    assert r.exit_code == 0, r.output
    meta = json.loads((out / "testset.json").read_text())
    assert (meta["min_parts"], meta["max_parts"], meta["texture_probability"]) == (2, 4, 0.25)
    default = tmp_path / "default"
    assert runner.invoke(app, ["eval", "render-testset", "-o", str(default), "--count", "1", "--size", "32"]).exit_code == 0
    a, b = (np.asarray(Image.open(d / "heldout_000000" / "000.png")) for d in (out, default))
    assert not np.array_equal(a, b)  # same seed, other complexity: another object
    r = runner.invoke(app, ["eval", "render-testset", "-o", str(tmp_path / "bad"), "--count", "1",
                            "--texture-probability", "2"])
    assert r.exit_code == 2 and "texture_probability" in r.output and not (tmp_path / "bad" / "heldout_000000").exists()


def test_evaluate_reports_progress_per_object_and_denoising_step(tmp_path, tiny_pipeline):
    """`eval nvs` was silent for minutes: evaluate() now shows objects and, for a predictor with an
    ``on_step`` slot (PipelinePredictor), its denoising steps; the slot is restored afterwards."""
    from zero123.eval import PipelinePredictor

    steps = []
    pred = PipelinePredictor(tiny_pipeline, num_inference_steps=3, name="model", on_step=lambda d, t: steps.append((d, t)))
    pred(Image.new("RGB", (32, 32)), [world_cam_change()], cond_elevation=0.0, seed=0)
    assert steps == [(1, 3), (2, 3), (3, 3)]  # S = 3: grid 1, 334, 667, 1000 without its last entry

    class Stepping:
        name = "model"

        def __init__(self):
            self.on_step, self.seen = None, []

        def __call__(self, input_image, cameras, *, cond_elevation, seed):
            self.seen.append(callable(self.on_step))
            self.on_step(1, 1)
            return [np.asarray(input_image, dtype=np.float64) / 255.0 for _ in cameras]

    data = make_views_release(tmp_path / "d", n_objects=2)
    stepping = Stepping()
    evaluate(ViewsFolder(data, "all"), _proto(targets=(2,)), stepping, None, progress=True)
    assert stepping.seen == [True, True] and stepping.on_step is None
    quiet = Stepping()
    with pytest.raises(TypeError):  # progress=False: nothing fills the slot (None is not callable)
        evaluate(ViewsFolder(data, "all"), _proto(targets=(2,)), quiet, None, progress=False)


def world_cam_change():
    from zero123.camera import RelativeCamera

    return RelativeCamera.from_degrees(azimuth=30.0)


# ------------------------------------------------------------------------------------ mask IoU
def make_square_views(root: Path, size: int = 32) -> Path:
    """One object: a dark square of side 8 on a transparent background that moves 4 px right per
    view, views 1..5 at RELATIVE changes of view 0."""
    folder = root / "sq"
    folder.mkdir(parents=True)
    poses = [(COND_POLAR, COND_AZ)] + [(COND_POLAR - math.radians(el), COND_AZ + math.radians(az)) for az, el in RELATIVE]
    for v, (polar, az) in enumerate(poses):
        img = np.zeros((size, size, 4), dtype=np.uint8)
        img[8:16, 4 * v: 4 * v + 8] = [40, 60, 200, 255]
        Image.fromarray(img, "RGBA").save(folder / f"{v:03d}.png")
        np.save(folder / f"{v:03d}.npy", world_to_cam_from_spherical(polar, az, RADIUS))
    return root


def test_mask_iou_per_view_per_object_for_identity_and_model(tmp_path):
    """Mask IoU is scored per view for every method (identity too), averaged per object, reported
    in the JSON, both CSVs and the summary table: the input square vs one shifted 4v px overlaps
    (8 - 4v) columns of (8 + 4v), so identity's IoU is 1/3 at view 1 and 0 beyond."""
    from zero123.eval.runner import format_summary

    data = make_square_views(tmp_path / "d")
    views = ViewsFolder(data, "all")

    class Exact:  # the ground truth of each target at the protocol's 32 px (no resize)
        name = "oracle"

        def __call__(self, input_image, cameras, *, cond_elevation, seed):
            return [np.asarray(views.load_rgb("sq", v, 32), dtype=np.float64) / 255 for v in range(1, 6)]

    oracle = Exact()
    out = tmp_path / "out"
    rep = evaluate(views, _proto(), oracle, out, progress=False)
    o = rep.objects[0]
    ident = [vr.scores["identity"]["mask_iou"] for vr in o.views]
    assert ident == pytest.approx([1 / 3, 0, 0, 0, 0])
    assert o.means["identity"]["mask_iou"] == pytest.approx(1 / 15)
    assert rep.summary["oracle"]["mask_iou"] == pytest.approx(1.0)
    assert rep.summary["margin_over_identity"]["mask_iou"] == pytest.approx(1 - 1 / 15)
    assert any("mask IoU" in n and "0.1" in n for n in rep.notes)
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert float(rows[-1]["mask_iou"]) == pytest.approx(1.0) and rows[-1]["method"] == "oracle"
    per_view = list(csv.DictReader((out / "per_view.csv").open()))
    assert [float(r["mask_iou"]) for r in per_view if r["method"] == "identity"] == pytest.approx(ident, abs=1e-6)
    table = format_summary(rep)
    assert "| mask IoU |" in table and "| identity |" in table and "0.066667" in table
