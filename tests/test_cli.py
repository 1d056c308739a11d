"""What every ``zero123`` command shares: one error idiom, one option style and names, ``--version``,
``--threads``, and the same one-line errors for bad devices in every command that takes one."""

from __future__ import annotations

import warnings

import pytest
import torch
import typer
import typer.main
from typer.testing import CliRunner

from zero123 import __version__
from zero123.cli.__main__ import app
from zero123.cli._common import check_output_dir, cli_errors, run_cli_errors

runner = CliRunner()


def _commands() -> dict[str, object]:
    """``"nvs"``, ``"eval nvs"``, ... -> the click command typer built."""
    root = typer.main.get_command(app)
    out = {}
    for name, cmd in root.commands.items():
        for sub, c in getattr(cmd, "commands", {}).items():
            out[f"{name} {sub}"] = c
        if not hasattr(cmd, "commands"):
            out[name] = cmd
    return out


def _opts(cmd) -> set[str]:
    return {o for p in cmd.params for o in p.opts}


def test_every_command_goes_through_the_error_idiom():
    """Registered through cli._common.command: each callback is the run_cli_errors wrapper."""
    commands = _commands()
    assert {"nvs", "train", "eval nvs", "eval render-testset", "render-dataset", "convert", "info"} <= set(commands)
    for name, cmd in commands.items():
        assert hasattr(cmd.callback, "__wrapped__"), f"{name} is not registered with cli._common.command"


def test_one_option_style_and_the_same_names():
    """-o/--out for output folders (never --output), --threads on every command that computes,
    --device with --dtype where a model runs, --json and --seed spelled one way."""
    commands = _commands()
    for name, cmd in commands.items():
        opts = _opts(cmd)
        assert "--output" not in opts, name
        if "--out" in opts:
            assert "-o" in opts, f"{name}: --out without -o"
        if name != "env":
            assert "--threads" in opts, f"{name} has no --threads"
        if "--dtype" in opts:
            assert "--device" in opts, name
    # every command that writes a folder names it -o/--out (no positional OUT)
    for name in ("nvs", "batch", "train", "export", "convert", "create-random", "render-dataset", "reconstruct", "eval nvs"):
        assert {"-o", "--out"} <= _opts(commands[name]), f"{name}: its output folder is not -o/--out"
    for name in ("nvs", "eval nvs"):
        assert {"--device", "--dtype", "--seed", "-o", "--steps", "--guidance", "--eta", "--max-batch"} <= _opts(commands[name]), name
    assert "--fp16" not in _opts(commands["eval nvs"])  # --dtype fp16 instead


def test_version():
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.stdout.strip() == f"zero123 {__version__}"


#: minimal arguments that reach each command's device check (which comes before any slow work)
DEVICE_COMMANDS = {
    "nvs": ["nvs", "{image}", "--model", "{missing}"],
    "batch": ["batch", "{tmp}/manifest.jsonl", "-o", "{tmp}/out", "--model", "{missing}"],
    "eval nvs": ["eval", "nvs", "--data", "{tmp}", "--model", "{missing}", "-o", "{tmp}/o"],
    "train": ["train", "--data", "{tmp}", "--config", "{config}", "-o", "{tmp}/run"],
    "reconstruct": ["reconstruct", "{image}", "-o", "{tmp}/out", "--model", "{missing}"],
    "app": ["app", "--model", "{missing}"],
}


@pytest.fixture
def device_args(tmp_path, tiny_image):
    from test_train import tiny_config

    image = tmp_path / "in.png"
    tiny_image.save(image)
    config = tiny_config(tmp_path)
    fill = dict(image=image, missing=tmp_path / "no-model", tmp=tmp_path, config=config)
    return {name: [a.format(**fill) for a in args] for name, args in DEVICE_COMMANDS.items()}


def test_the_device_commands_are_all_listed():
    assert {n for n, c in _commands().items() if "--device" in _opts(c)} == set(DEVICE_COMMANDS)


@pytest.mark.parametrize("command", sorted(DEVICE_COMMANDS))
@pytest.mark.parametrize("device,cuda,count,match", [
    ("cuda", False, 0, "CUDA is not available"),
    ("cuda:7", True, 1, "only 1 CUDA device"),
    ("mps", False, 0, "MPS"),
    ("tpu", False, 0, "--device must be"),
])
def test_bad_device_is_one_line_in_every_command(device_args, monkeypatch, command, device, cuda, count, match):
    """`cuda` on a CPU build, `mps` without Apple GPU, `cuda:7` on a 1-GPU machine: one line, exit 2."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    r = runner.invoke(app, [*device_args[command], "--device", device])
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("error: ") and match in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.output


def test_threads_option_sets_torch_threads_and_is_checked():
    before = torch.get_num_threads()
    try:
        r = runner.invoke(app, ["info", "bundled", "--threads", "1", "--json"])
        assert r.exit_code == 0, r.output
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    r = runner.invoke(app, ["info", "bundled", "--threads", "0"])
    assert r.exit_code == 2 and "--threads" in r.stderr


def test_default_threads_leave_busy_cores_alone(monkeypatch):
    """Without --threads or OMP_NUM_THREADS: the cores the 1-minute load average says are free."""
    from zero123.devices import default_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("os.getloadavg", lambda: (1.6, 1.0, 1.0))
    monkeypatch.setattr("zero123.devices.available_cores", lambda: 2)
    assert default_threads() == 1
    monkeypatch.setattr("os.getloadavg", lambda: (0.2, 1.0, 1.0))
    assert default_threads() == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert default_threads() == 3


def test_internal_error_is_one_line_exit_1(monkeypatch, capsys):
    @run_cli_errors
    def boom():
        raise KeyError("oops")

    with pytest.raises(typer.Exit) as e:
        boom()
    assert e.value.exit_code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: internal error: KeyError") and "ZERO123_DEBUG" in err and len(err.splitlines()) == 1
    monkeypatch.setenv("ZERO123_DEBUG", "1")
    with pytest.raises(KeyError):
        boom()


def test_warnings_print_as_one_line(capsys):
    with pytest.raises(typer.Exit):
        with cli_errors():
            warnings.warn("first line\nsecond line", UserWarning)
            raise ValueError("bad")
    err = capsys.readouterr().err.splitlines()
    assert err == ["warning: first line second line", "error: bad"]


def test_check_output_dir(tmp_path):
    (tmp_path / "file").write_text("x")
    check_output_dir(tmp_path / "new" / "deeper")  # creatable: fine, nothing created
    assert not (tmp_path / "new").exists()
    with pytest.raises(NotADirectoryError, match="-o/--out .* exists and is not a folder"):
        check_output_dir(tmp_path / "file")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        check_output_dir(tmp_path / "file" / "sub")
