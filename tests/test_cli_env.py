"""``zero123 env``: a paste-ready bug report (STYLE.md, 'What to absorb' 13)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from zero123.cli.__main__ import app
from zero123.cli.env import env


def test_env_returns_dict_with_versions(capsys):
    info = env(as_json=False)
    for key in ("zero123", "python", "platform", "cpu", "torch", "diffusers", "transformers", "accelerate", "gpu", "moderngl egl"):
        assert key in info and info[key], key
    printed = capsys.readouterr().out
    assert "Copy-and-paste" in printed and f"- `torch`: {info['torch']}" in printed


def test_env_json_via_cli():
    result = CliRunner().invoke(app, ["env", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    import torch

    assert info["torch"].split("+")[0] == torch.__version__.split("+")[0]
