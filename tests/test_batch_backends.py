"""The same batch job on Ray Data (a local 2-CPU cluster, 2 actors) and under ``accelerate launch``
(2 CPU processes, gloo): byte-identical row files and the same result lines as the local backend."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from batch_fixtures import BAD_ROWS, GOOD_ROWS, STEPS, comparable, nvs_task, output_files, reference_run, result_lines

from zero123.batch import RayBackend, load_rows, run_batch

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_model_dir):
    return reference_run(tmp_path_factory.mktemp("batch_ref"), tiny_model_dir)


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    pytest.importorskip("pyarrow")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_matches_local(reference, tiny_model_dir, ray_cluster, tmp_path):
    manifest, ref_out, ref_summary = reference
    out = tmp_path / "out"
    backend = RayBackend(workers=2, cpus_per_worker=0.5, device="cpu", threads=1)
    s = run_batch(load_rows(manifest), out, nvs_task(tiny_model_dir), backend)
    assert (s.done, s.skipped, s.failed) == (ref_summary.done, 0, ref_summary.failed)
    assert output_files(out) == output_files(ref_out)  # byte for byte, with 2 workers instead of 1
    assert comparable(result_lines(out)) == comparable(result_lines(ref_out))  # manifest order, one line each


@pytest.mark.slow
def test_ray_refuses_requests_the_cluster_cannot_meet(reference, tiny_model_dir, ray_cluster, tmp_path):
    manifest, _, _ = reference
    rows = [r for r in load_rows(manifest) if r.error is None]
    with pytest.raises(ValueError, match="needs 3 CPUs; the Ray cluster has 2"):
        run_batch(rows, tmp_path / "a", nvs_task(tiny_model_dir), RayBackend(workers=2, device="cpu"))
    with pytest.raises(ValueError, match="needs 1 GPUs; the Ray cluster has 0"):
        run_batch(rows, tmp_path / "b", nvs_task(tiny_model_dir), RayBackend(gpus_per_worker=1, device="cpu"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_accelerate_two_processes_match_local(reference, tiny_model_dir, tmp_path):
    pytest.importorskip("accelerate")
    manifest, ref_out, _ = reference
    out = tmp_path / "out"
    # on CPUs, --multi_gpu is what makes accelerate start N processes (torchrun; gloo)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(_free_port()), "-m", "zero123.cli.__main__",
           "batch", str(manifest), "--out", str(out), "--backend", "accelerate", "--model", str(tiny_model_dir),
           "--steps", str(STEPS), "--quality", "original", "--device", "cpu", "--threads", "1"]
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode != 0  # the bad rows fail the job
    assert f"batch: {len(GOOD_ROWS)} done, 0 skipped, {len(BAD_ROWS) + 1} failed" in proc.stdout, proc.stdout + proc.stderr[-3000:]
    assert proc.stdout.count("batch:") == 1  # the summary comes from the main process only
    assert output_files(out) == output_files(ref_out)
    assert comparable(result_lines(out)) == comparable(result_lines(ref_out))  # parts merged in manifest order
    assert not (out / "results.d").exists()
