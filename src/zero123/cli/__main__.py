"""``zero123`` command table. Each command lives in its own module as a typed function;
this file only registers them (through :func:`zero123.cli._common.command`, which gives every
command the same error idiom and ``--threads`` handling). Heavy imports happen inside the commands.
"""

from __future__ import annotations

import os

# Before torch (and its OpenMP runtime) is imported by any command: idle OpenMP threads sleep
# instead of spinning, so a busy machine is not slowed further (docs/benchmarks.md, "CPU threads").
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import importlib  # noqa: E402
from typing import Annotated  # noqa: E402

import typer  # noqa: E402

from ._common import command  # noqa: E402

app = typer.Typer(
    name="zero123",
    help="Zero-1-to-3: novel views of an object from one photo, datasets, training and evaluation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"zero123 {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version and exit.")] = False,
) -> None:
    """Zero-1-to-3: novel views of an object from one photo, datasets, training and evaluation."""


# (command name, module under zero123.cli, function name)
COMMANDS: list[tuple[str, str, str]] = [
    ("nvs", "nvs", "nvs"),
    ("batch", "batch", "batch"),
    ("create-random", "create", "create_random"),
    ("train", "train", "train"),
    ("export", "export", "export"),
    ("render-dataset", "render_dataset", "render_dataset"),
    ("env", "env", "env"),
    ("convert", "convert", "convert"),
    ("info", "info", "info"),
    ("reconstruct", "reconstruct", "reconstruct"),
    ("app", "app", "app"),
]

for _name, _module, _func in COMMANDS:
    command(app, _name, getattr(importlib.import_module(f"zero123.cli.{_module}"), _func))

# (group name, module under zero123.cli, attribute holding a typer.Typer): `zero123 <group> <command>`
SUBAPPS: list[tuple[str, str, str]] = [
    ("eval", "eval", "app"),
]

for _name, _module, _attr in SUBAPPS:
    app.add_typer(getattr(importlib.import_module(f"zero123.cli.{_module}"), _attr), name=_name)


def main() -> None:  # console-script entry point
    app()


if __name__ == "__main__":
    main()
