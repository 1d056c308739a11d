"""``zero123`` command table. Each command lives in its own module as a typed function;
this file only registers them. Heavy imports happen inside the commands."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="zero123",
    help="Zero-1-to-3: novel views of an object from one photo, datasets, training and evaluation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

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
]

for _name, _module, _func in COMMANDS:
    app.command(_name)(getattr(importlib.import_module(f"zero123.cli.{_module}"), _func))

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
