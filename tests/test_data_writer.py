"""Dataset writer and `zero123 render-dataset` (issue 4 items 4 and 8; docs/conventions.md, Dataset layout)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from zero123.cli.__main__ import app
from zero123.data.views_release import ViewsReleaseDataset
from zero123.data.writer import RenderSettings, mesh_jobs, procedural_jobs, render_dataset
from zero123.render.gl_backend import gl_available

BACKEND = "gl" if gl_available() else "torch"
SMALL = RenderSettings(num_views=3, image_size=32, backend=BACKEND, min_parts=2, max_parts=3)


def test_writes_views_release_layout(tmp_path):
    report = render_dataset(tmp_path, procedural_jobs(3, seed=7), SMALL, seed=7, progress=False)
    assert sorted(report.rendered) == ["proc_000000", "proc_000001", "proc_000002"] and not report.failed
    assert json.loads((tmp_path / "valid_paths.json").read_text()) == ["proc_000000", "proc_000001", "proc_000002"]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["seed"] == 7 and manifest["settings"]["num_views"] == 3
    assert {e["status"] for e in manifest["objects"].values()} == {"ok"}
    folder = tmp_path / "proc_000001"
    assert sorted(p.name for p in folder.iterdir()) == ["000.npy", "000.png", "001.npy", "001.png", "002.npy", "002.png"]
    im = Image.open(folder / "000.png")
    assert im.mode == "RGBA" and im.size == (32, 32)
    alpha = np.asarray(im)[..., 3]
    assert alpha[0, 0] == 0 and alpha.max() == 255  # transparent background, opaque object
    m = np.load(folder / "000.npy")
    assert m.dtype == np.float64 and m.shape == (3, 4)
    dist = np.linalg.norm(-m[:, :3].T @ m[:, 3])
    assert 1.5 <= dist <= 2.2  # the camera distance range (docs/conventions.md, Dataset layout)
    assert len(ViewsReleaseDataset(tmp_path, split="all", image_size=32)) == 3


def test_deterministic_given_seed(tmp_path):
    render_dataset(tmp_path / "a", procedural_jobs(1, seed=1), SMALL, seed=1, progress=False)
    render_dataset(tmp_path / "b", procedural_jobs(1, seed=1), SMALL, seed=1, progress=False)
    for name in ("000.npy", "001.png"):
        a, b = (tmp_path / d / "proc_000000" / name for d in "ab")
        assert a.read_bytes() == b.read_bytes()


def test_interrupted_run_resumes_without_loss_or_duplicates(tmp_path):
    """Kill after the first object; leave a stale temp folder; the rerun completes everything once."""
    jobs = procedural_jobs(3, seed=0)

    def interrupt(result):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render_dataset(tmp_path, jobs, SMALL, seed=0, progress=False, on_result=interrupt)
    (tmp_path / ".proc_000002.abc.tmp").mkdir()  # what a killed worker leaves behind
    (tmp_path / ".proc_000002.abc.tmp" / "000.png").write_bytes(b"partial")
    done_before = sorted(p.name for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert done_before == ["proc_000000"]
    first_bytes = (tmp_path / "proc_000000" / "000.png").read_bytes()

    report = render_dataset(tmp_path, jobs, SMALL, seed=0, progress=False)
    assert report.skipped == ["proc_000000"] and sorted(report.rendered) == ["proc_000001", "proc_000002"]
    assert (tmp_path / "proc_000000" / "000.png").read_bytes() == first_bytes
    assert not list(tmp_path.glob(".*.tmp"))
    assert json.loads((tmp_path / "valid_paths.json").read_text()) == [j.name for j in jobs]
    # a third run does nothing
    assert render_dataset(tmp_path, jobs, SMALL, seed=0, progress=False).rendered == []


def test_resume_with_other_settings_is_refused(tmp_path):
    render_dataset(tmp_path, procedural_jobs(1, seed=0), SMALL, seed=0, progress=False)
    with pytest.raises(ValueError, match="other settings"):
        render_dataset(tmp_path, procedural_jobs(1, seed=0), SMALL, seed=1, progress=False)
    other = RenderSettings(num_views=4, image_size=32, backend=BACKEND)
    with pytest.raises(ValueError, match="num_views"):
        render_dataset(tmp_path, procedural_jobs(1, seed=0), other, seed=0, progress=False)


def test_broken_meshes_are_recorded_and_skipped(tmp_path):
    import trimesh

    good = tmp_path / "in" / "good.ply"
    good.parent.mkdir()
    trimesh.creation.box().export(good)
    (tmp_path / "in" / "broken.obj").write_text("this is not a mesh\n")
    out = tmp_path / "out"
    report = render_dataset(out, mesh_jobs(sorted((tmp_path / "in").iterdir())), SMALL, progress=False)
    assert report.rendered == ["good"] and list(report.failed) == ["broken"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["objects"]["broken"]["status"] == "failed" and manifest["objects"]["broken"]["error"]
    assert json.loads((out / "valid_paths.json").read_text()) == ["good"]


def test_cli_renders_and_reports_errors(tmp_path):
    runner = CliRunner()
    assert "--procedural" in runner.invoke(app, ["render-dataset", "--help"]).output
    res = runner.invoke(app, ["render-dataset", "--procedural", "2", "--out", str(tmp_path / "d"), "--views", "2",
                              "--size", "32", "--backend", BACKEND, "--no-progress"])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "d" / "valid_paths.json").read_text()) == ["proc_000000", "proc_000001"]
    for args, msg in (([], "exactly one of"), (["--meshes", str(tmp_path / "nope.glb")], "does not exist"),
                      (["--procedural", "1", "--backend", "vulkan"], "backend")):
        res = runner.invoke(app, ["render-dataset", "--out", str(tmp_path / "e"), "--no-progress", *args])
        assert res.exit_code == 2 and "error:" in res.output and msg in res.output, res.output
    (tmp_path / "empty").mkdir()
    res = runner.invoke(app, ["render-dataset", "--meshes", str(tmp_path / "empty"), "--out", str(tmp_path / "f")])
    assert res.exit_code == 2 and "no mesh files" in res.output


def test_cli_exits_non_zero_when_every_object_failed(tmp_path):
    """Before: exit 0 with 'rendered 0 ... failed 2'. Now: a one-line error naming the first failure."""
    (tmp_path / "in").mkdir()
    for name in ("a.obj", "b.obj"):
        (tmp_path / "in" / name).write_text("this is not a mesh\n")
    res = CliRunner().invoke(app, ["render-dataset", "--meshes", str(tmp_path / "in"), "-o", str(tmp_path / "out"),
                                   "--views", "2", "--size", "32", "--backend", BACKEND, "--no-progress"])
    assert res.exit_code == 1, res.output
    assert "error: every object failed (2)" in res.stderr and "first error" in res.stderr
    assert json.loads((tmp_path / "out" / "valid_paths.json").read_text()) == []


@pytest.mark.slow
def test_two_workers_match_one(tmp_path):
    """--workers 2 (spawned processes) writes the same files as one worker."""
    render_dataset(tmp_path / "one", procedural_jobs(3, seed=2), SMALL, seed=2, progress=False)
    render_dataset(tmp_path / "two", procedural_jobs(3, seed=2), SMALL, seed=2, workers=2, progress=False)
    for p in sorted((tmp_path / "one").rglob("*.npy")):
        assert p.read_bytes() == (tmp_path / "two" / p.relative_to(tmp_path / "one")).read_bytes()


@pytest.mark.slow
def test_ray_local_instance(tmp_path):
    """--ray local: each object a Ray task on a local 2-CPU instance."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        report = render_dataset(tmp_path, procedural_jobs(2, seed=0), SMALL, seed=0, ray_address="local", progress=False)
    finally:
        ray.shutdown()
    assert sorted(report.rendered) == ["proc_000000", "proc_000001"]
    assert len(ViewsReleaseDataset(tmp_path, split="all", image_size=32)) == 2


def test_object_complexity_settings_reach_the_objects_and_manifest(tmp_path):
    """--min-parts/--max-parts/--texture-probability set the procedural objects (stored in the
    manifest); a folder written before texture_probability existed still resumes with defaults."""
    from zero123.data.objects import ProceduralConfig, procedural_object
    from zero123.data.writer import load_job_mesh

    job = procedural_jobs(1, seed=3)[0]
    plain = RenderSettings(min_parts=1, max_parts=1, texture_probability=0.0)
    mesh = load_job_mesh(job, plain)
    ref = procedural_object(int(job.source), ProceduralConfig(min_parts=1, max_parts=1, texture_probability=0.0))
    np.testing.assert_array_equal(mesh.vertices, ref.vertices)
    assert (mesh.textures == 255).all()  # untextured: plain vertex colours
    assert (load_job_mesh(job, RenderSettings(min_parts=1, max_parts=1, texture_probability=1.0)).textures != 255).any()
    assert len(mesh.vertices) < len(load_job_mesh(job, RenderSettings(min_parts=6, max_parts=6)).vertices)
    with pytest.raises(ValueError, match="texture_probability"):
        RenderSettings(texture_probability=1.5)

    res = CliRunner().invoke(app, ["render-dataset", "--procedural", "1", "--out", str(tmp_path / "d"), "--views", "2",
                                   "--size", "32", "--backend", BACKEND, "--no-progress", "--min-parts", "1",
                                   "--max-parts", "2", "--texture-probability", "0"])
    assert res.exit_code == 0, res.output
    settings = json.loads((tmp_path / "d" / "manifest.json").read_text())["settings"]
    assert (settings["min_parts"], settings["max_parts"], settings["texture_probability"]) == (1, 2, 0.0)
    res = CliRunner().invoke(app, ["render-dataset", "--procedural", "1", "--out", str(tmp_path / "e"), "--no-progress",
                                   "--min-parts", "3", "--max-parts", "2"])
    assert res.exit_code == 2 and "min_parts" in res.output, res.output

    render_dataset(tmp_path / "old", procedural_jobs(2, seed=0), SMALL, seed=0, progress=False)
    path = tmp_path / "old" / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["settings"]["texture_probability"]  # as written by an older version
    path.write_text(json.dumps(manifest))
    report = render_dataset(tmp_path / "old", procedural_jobs(3, seed=0), SMALL, seed=0, progress=False)
    assert report.rendered == ["proc_000002"] and len(report.skipped) == 2
