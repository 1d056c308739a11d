"""Batch jobs on the local backend: outputs, bad rows, resume (also after SIGKILL), shards, the task
seam and the ``zero123 batch`` command. Ray and accelerate: tests/test_batch_backends.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from batch_fixtures import (
    BAD_ROWS,
    GOOD_IDS,
    GOOD_ROWS,
    STEPS,
    comparable,
    local_backend,
    nvs_task,
    output_files,
    reference_run,
    result_lines,
    write_images,
    write_manifest,
)
from PIL import Image
from typer.testing import CliRunner

from zero123.batch import BatchRow, NvsTask, RowTask, load_rows, run_batch
from zero123.cli.__main__ import app
from zero123.nvs import SamplingSettings

SRC = str(Path(__file__).resolve().parents[1] / "src")


local = local_backend


def cli_args(manifest: Path, out: Path, model_dir, *extra: str) -> list[str]:
    # --quality original: the sampler of the Python API's default SamplingSettings (the CLI defaults to fast)
    return ["batch", str(manifest), "--out", str(out), "--model", str(model_dir), "--steps", str(STEPS), "--quality", "original",
            "--device", "cpu", "--threads", "1", *extra]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_model_dir):
    """One uninterrupted local run of the test manifest (good and bad rows)."""
    return reference_run(tmp_path_factory.mktemp("batch_ref"), tiny_model_dir)


def test_local_job_writes_rows_and_results(reference):
    manifest, out, summary = reference
    assert (summary.done, summary.skipped, len(summary.failed)) == (len(GOOD_ROWS), 0, len(BAD_ROWS) + 1)
    lines = result_lines(out)
    assert [line["id"] for line in lines][: len(GOOD_IDS)] == GOOD_IDS  # manifest order
    assert len({line["id"] for line in lines}) == len(lines) == summary.total
    for line, row in zip(lines, GOOD_ROWS):
        assert line["status"] == "ok" and line["error"] is None and line["seed"] == row["seed"]
        assert line["settings"]["sampling"]["steps"] == STEPS and line["dtype"] == "float32"
        views = [f for f in line["files"] if "/view_" in f]
        assert len(views) == len(row["cameras"])
        for f in line["files"]:
            assert (out / f).is_file()
        assert Image.open(out / views[0]).size == (64, 64)
    assert lines[2]["meta"] == {"source": "test"}
    # no temporaries, no parts, one folder per finished row
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(GOOD_IDS + ["batch.json", "results.jsonl"])
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.name != ".results.lock"]


def test_bad_rows_are_failed_results_with_clear_messages(reference):
    _, out, summary = reference
    failed = {line["id"]: line for line in result_lines(out) if line["status"] == "failed"}
    for row, needle in BAD_ROWS:
        error = failed[row["id"]]["error"] if row["id"] in failed else next(
            v["error"] for k, v in failed.items() if k.startswith("#row") and "duplicate" in v["error"])
        assert needle in error, error
        assert "\n" not in error
    assert any("not valid JSON" in v["error"] for v in failed.values())
    assert summary.failed == {k: v["error"] for k, v in failed.items()}


def test_row_output_is_the_python_api_output(reference, tiny_model_dir, tmp_path):
    """A row's files are exactly what generate_views + NovelViews.save make for its image,
    cameras and seed: they depend on the row and the settings only."""
    from zero123.loading import load_pipeline
    from zero123.nvs import generate_views

    manifest, out, _ = reference
    pipe = load_pipeline(str(tiny_model_dir), device="cpu", dtype="fp32")
    row = GOOD_ROWS[0]
    views = generate_views(pipe, manifest.parent / row["image"], row["cameras"], settings=SamplingSettings(steps=STEPS), seed=row["seed"])
    views.save(tmp_path)
    for p in sorted(tmp_path.glob("*.png")):
        assert p.read_bytes() == (out / "r0" / p.name).read_bytes(), p.name


def test_rerun_skips_finished_rows_and_refuses_other_settings(reference, tiny_model_dir, tmp_path):
    manifest, ref_out, _ = reference
    out = tmp_path / "out"
    shutil.copytree(ref_out, out)
    before = output_files(out)
    again = run_batch(load_rows(manifest), out, nvs_task(tiny_model_dir, max_batch=4), local())  # max_batch may change
    assert (again.done, again.skipped, len(again.failed)) == (0, len(GOOD_ROWS), len(BAD_ROWS) + 1)
    assert output_files(out) == before
    assert comparable(result_lines(out)) == comparable(result_lines(ref_out))
    with pytest.raises(ValueError, match=r"other settings \(settings.sampling.steps: 2 -> 3\)"):
        run_batch(load_rows(manifest), out, NvsTask(model=str(tiny_model_dir), sampling=SamplingSettings(steps=3)), local())
    with pytest.raises(ValueError, match="not empty and has no batch.json"):
        run_batch(load_rows(manifest), manifest.parent / "img", nvs_task(tiny_model_dir), local())


def test_changed_row_is_redone_and_lost_lines_are_recovered(reference, tiny_model_dir, tmp_path):
    manifest, ref_out, _ = reference
    out = tmp_path / "out"
    shutil.copytree(ref_out, out)
    # results.jsonl lost (e.g. deleted): the finished folders' row.json say what they hold
    (out / "results.jsonl").unlink()
    rows = load_rows(manifest)
    changed = [BatchRow(**{**r.__dict__, "seed": 99}) if r.id == "r1" else r for r in rows]
    s = run_batch(changed, out, nvs_task(tiny_model_dir), local())
    assert (s.done, s.skipped) == (1, len(GOOD_ROWS) - 1)
    lines = {line["id"]: line for line in result_lines(out)}
    assert lines["r1"]["seed"] == 99 and lines["r0"]["status"] == "ok" and lines["r0"]["files"]
    assert output_files(out)["r0/view_00_az90_el0_r1.png"] == output_files(ref_out)["r0/view_00_az90_el0_r1.png"]
    assert output_files(out)["r1/view_00_az30_el10_r1.2.png"] != output_files(ref_out)["r1/view_00_az30_el10_r1.2.png"]


def test_shards_into_one_folder_equal_one_job(reference, tiny_model_dir, tmp_path):
    """Two shards (as a job array would run them) write their own parts; the merged folder is the
    unsharded job's, row for row and byte for byte."""
    manifest, ref_out, _ = reference
    out = tmp_path / "out"
    for k in (1, 0):
        run_batch(load_rows(manifest), out, nvs_task(tiny_model_dir), local(), shard_index=k, num_shards=2)
    assert output_files(out) == output_files(ref_out)
    assert comparable(result_lines(out)) == comparable(result_lines(ref_out))
    assert not (out / "results.d").exists()


KILLER = textwrap.dedent("""
    import os, signal, sys
    from zero123.batch import LocalBackend, NvsTask, load_rows, run_batch
    from zero123.nvs import SamplingSettings

    class KilledMidRow(NvsTask):
        def run(self, model, row, prepared, folder):
            if row.id == sys.argv[3]:
                (folder / "input.png").write_bytes(b"half a file")
                os.kill(os.getpid(), signal.SIGKILL)
            return super().run(model, row, prepared, folder)

    task = KilledMidRow(model=sys.argv[2], sampling=SamplingSettings(steps=%d))
    run_batch(load_rows(sys.argv[1]), sys.argv[4], task, LocalBackend(device="cpu", threads=1))
""" % STEPS)


def test_sigkill_mid_row_then_rerun_resumes(reference, tiny_model_dir, tmp_path):
    manifest, ref_out, _ = reference
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    # 1. killed while writing the third row
    proc = subprocess.run([sys.executable, "-c", KILLER, str(manifest), str(tiny_model_dir), "c", str(out)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    # lines are fsynced as they come: the manifest's bad rows first, then the rows finished before the kill
    assert [line["id"] for line in result_lines(out) if line["status"] == "ok"] == ["r0", "r1"]
    assert not (out / "c").exists() and list(out.glob(".c.*.tmp"))  # the half-written row is hidden
    # 2. the same command (the CLI this time) finishes the job
    res = CliRunner().invoke(app, cli_args(manifest, out, tiny_model_dir))
    assert res.exit_code == 1, res.output  # the bad rows
    assert f"{len(GOOD_ROWS) - 2} done, 2 skipped, {len(BAD_ROWS) + 1} failed" in res.output
    lines = result_lines(out)
    assert len(lines) == len({line["id"] for line in lines}) == len(GOOD_ROWS) + len(BAD_ROWS) + 1
    assert output_files(out) == output_files(ref_out)
    assert comparable(lines) == comparable(result_lines(ref_out))
    assert not list(out.glob(".*.tmp"))


def test_sigterm_stops_the_job_cleanly(reference, tiny_model_dir, tmp_path, monkeypatch):
    """SIGTERM (scancel, preemption) while a row is being written: exit 143, that row leaves
    nothing behind, the rows before it stay recorded, and the same command then finishes the job."""
    import signal

    manifest, ref_out, _ = reference
    out = tmp_path / "out"
    run = NvsTask.run

    def run_then_terminated(self, model, row, prepared, folder):
        if row.id == "c":
            (folder / "input.png").write_bytes(b"half a file")
            os.kill(os.getpid(), signal.SIGTERM)  # handled at the next bytecode, inside this row
        return run(self, model, row, prepared, folder)

    monkeypatch.setattr(NvsTask, "run", run_then_terminated)
    before = signal.getsignal(signal.SIGTERM)
    res = CliRunner().invoke(app, cli_args(manifest, out, tiny_model_dir))
    assert res.exit_code == 143, res.output
    assert [line["id"] for line in result_lines(out) if line["status"] == "ok"] == ["r0", "r1"]
    assert not (out / "c").exists() and not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert signal.getsignal(signal.SIGTERM) is before  # the command put the previous handler back
    monkeypatch.setattr(NvsTask, "run", run)
    res = CliRunner().invoke(app, cli_args(manifest, out, tiny_model_dir))
    assert f"{len(GOOD_ROWS) - 2} done, 2 skipped" in res.output
    assert output_files(out) == output_files(ref_out)


def test_torn_last_line_is_ignored(reference, tiny_model_dir, tmp_path):
    manifest, ref_out, _ = reference
    out = tmp_path / "out"
    shutil.copytree(ref_out, out)
    shutil.rmtree(out / "r3")
    text = (out / "results.jsonl").read_text().splitlines()
    (out / "results.jsonl").write_text("\n".join(t for t in text if '"r3"' not in t) + '\n{"id": "r3", "sta')
    s = run_batch(load_rows(manifest), out, nvs_task(tiny_model_dir), local())
    assert (s.done, s.skipped) == (1, len(GOOD_ROWS) - 1)
    assert comparable(result_lines(out)) == comparable(result_lines(ref_out))


class GreyscaleTask:
    """A task that is not novel views: the seam takes any object with these four methods."""

    name = "grey"

    def settings(self):
        return {"mode": "L"}

    def prepare(self, row):
        from zero123.image_io import load_image

        return {"size": load_image(row.image_path).size, "path": row.image_path}

    def load(self, device, dtype):
        return "no model"

    def run(self, model, row, prepared, folder):
        assert model == "no model"
        Image.open(prepared["path"]).convert("L").save(folder / "grey.png")
        (folder / "size.json").write_text(json.dumps(prepared["size"]))
        return ["grey.png", "size.json"]


def test_task_seam_runs_any_task(reference, tmp_path):
    manifest, _, _ = reference
    task = GreyscaleTask()
    assert isinstance(task, RowTask)
    s = run_batch(load_rows(manifest), tmp_path / "out", task, local())
    assert s.done == len(GOOD_ROWS) and "unreadable" in s.failed
    lines = {line["id"]: line for line in result_lines(tmp_path / "out")}
    assert lines["r0"]["files"] == ["r0/grey.png", "r0/size.json", "r0/row.json"] and lines["r0"]["task"] == "grey"
    assert Image.open(tmp_path / "out" / "r0" / "grey.png").mode == "L"


def test_cli_folder_shortcut_and_json(tiny_model_dir, tmp_path):
    from batch_fixtures import write_images

    write_images(tmp_path / "imgs")
    (tmp_path / "imgs" / "not_an_image.png").unlink()
    res = CliRunner().invoke(app, cli_args(tmp_path / "imgs", tmp_path / "out", tiny_model_dir,
                                           "--azimuth", "0,90", "--no-contact-sheet", "--json"))
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout[res.stdout.index("{"):])
    assert (report["done"], report["failed"]) == (3, 0)
    assert sorted(p.name for p in (tmp_path / "out" / "a").iterdir()) == [
        "cutout.png", "input.png", "row.json", "view_00_az0_el0_r1.png", "view_01_az90_el0_r1.png"]


@pytest.mark.parametrize("extra,needle", [
    (["--backend", "slurm"], "--backend must be one of"),
    (["--task", "paint"], "--task must be one of"),
    (["--workers", "2"], "--workers applies only to --backend ray"),
    (["--steps", "1"], "--steps must be"),
    (["--num-shards", "2", "--shard-index", "2"], "--shard-index must be"),
    (["--threads", "0"], "--threads"),
    (["--dtype", "fp8"], "--dtype must be"),
    (["--backend", "ray", "--workers", "0"], "--workers must be"),
])
def test_cli_usage_errors(reference, tiny_model_dir, tmp_path, extra, needle):
    manifest, _, _ = reference
    res = CliRunner().invoke(app, cli_args(manifest, tmp_path / "out", tiny_model_dir, *extra))
    assert res.exit_code == 2, res.output
    assert needle in res.output and "Traceback" not in res.output


def test_cli_refuses_a_launcher_without_accelerate_backend(reference, tiny_model_dir, tmp_path, monkeypatch):
    manifest, _, _ = reference
    monkeypatch.setenv("WORLD_SIZE", "2")
    res = CliRunner().invoke(app, cli_args(manifest, tmp_path / "out", tiny_model_dir))
    assert res.exit_code == 2 and "--backend accelerate" in res.output


# ---------------------------------------------------------------------- --task reconstruct
def _tiny_route():
    """The fast route cut down for a test: 3 generated views, a short fit, a small mesh and texture."""
    from zero123.threed.fit import FitSettings
    from zero123.threed.mesh import MeshSettings
    from zero123.threed.reconstruct import ImageRouteSettings, ReconstructSettings
    from zero123.threed.texture import TextureSettings

    chain = ReconstructSettings(fit=FitSettings(steps=40), mesh=MeshSettings(resolution=48), texture=TextureSettings(size=64), image_size=32)
    return ImageRouteSettings(azimuths=(0.0, 120.0, 240.0), elevations=(0.0, 30.0), sampling=SamplingSettings(steps=2), reconstruct=chain)


def test_reconstruct_task_row_is_the_library_output(tmp_path):
    """A mesh per row (rows without cameras; cond_elevation per row or the job's): each row folder
    holds the files of write_reconstruction, and its mesh.glb is byte-identical to the library's
    reconstruct_from_image + write_reconstruction for the same image, elevation and seed."""
    from zero123.batch import ReconstructTask, RowDefaults
    from zero123.loading import load_pipeline
    from zero123.threed.export import write_reconstruction
    from zero123.threed.reconstruct import DEFAULT_INPUT_ELEVATION, reconstruct_from_image

    assert ReconstructTask().elevation == DEFAULT_INPUT_ELEVATION
    write_images(tmp_path / "img")
    manifest = write_manifest(tmp_path / "m.jsonl", [{"id": "a", "image": "img/a.png", "seed": 3},
                                                     {"id": "b", "image": "img/b.png", "seed": 4, "cond_elevation": 20}])
    rows = load_rows(manifest, RowDefaults(cond_elevation=10.0, needs_cameras=False))
    assert [r.cond_elevation for r in rows] == [10.0, 20.0]
    task = ReconstructTask(route=_tiny_route(), turntable=None)
    summary = run_batch(rows[:1], tmp_path / "out", task)
    assert summary.done == 1 and not summary.failed
    row_a = tmp_path / "out" / "a"
    assert {"mesh.glb", "mesh.obj", "mesh.mtl", "mesh_texture.png", "mesh.ply", "views.png", "report.json", "row.json"} \
        <= {p.name for p in row_a.iterdir()}
    report = json.loads((row_a / "report.json").read_text())
    assert report["elevation_deg"] == 10.0 and report["files"]["glb"] == "mesh.glb"  # names relative to the folder

    rec = reconstruct_from_image(load_pipeline("bundled", device="cpu"), tmp_path / "img" / "a.png", elevation_deg=10.0,
                                 settings=_tiny_route(), seed=3)
    write_reconstruction(rec, tmp_path / "direct", turntable=None)
    assert (row_a / "mesh.glb").read_bytes() == (tmp_path / "direct" / "mesh.glb").read_bytes()
    again = run_batch(load_rows(manifest, RowDefaults(cond_elevation=10.0, needs_cameras=False))[:1], tmp_path / "out", task)
    assert again.skipped == 1 and again.done == 0


def test_cli_reconstruct_task_errors(tmp_path):
    """Options of the other task are refused; nvs rows still need cameras; a bad elevation is named."""
    write_images(tmp_path / "img")
    manifest = write_manifest(tmp_path / "m.jsonl", [{"id": "a", "image": "img/a.png"}])
    runner = CliRunner()
    r = runner.invoke(app, ["batch", str(manifest), "-o", str(tmp_path / "o1"), "--preset", "quality"])
    assert r.exit_code == 2 and "only to --task reconstruct" in r.output
    r = runner.invoke(app, ["batch", str(manifest), "-o", str(tmp_path / "o2"), "--task", "reconstruct", "--cond-elevation", "95"])
    assert r.exit_code == 2 and "--cond-elevation" in r.output and "[-90, 90]" in r.output
    r = runner.invoke(app, ["batch", str(manifest), "-o", str(tmp_path / "o3"), "--task", "reconstruct", "--preset", "huge"])
    assert r.exit_code == 2 and "preset must be one of" in r.output
    r = runner.invoke(app, ["batch", str(manifest), "-o", str(tmp_path / "o4"), "--steps", "2"])  # --task nvs
    assert r.exit_code == 1 and "no cameras" in r.output
