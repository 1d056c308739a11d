"""Helpers shared by the ``zero123`` commands: error reporting, list/device/dtype parsing.

Error contract: library errors at public boundaries are ``ValueError`` / ``TypeError`` /
``FileNotFoundError`` with a clear message; a command turns them into ONE line
``error: <message>`` on stderr and exit code 2 (see :func:`run_cli_errors`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import typer

from ..assets import BUNDLED_MODEL_NAME

#: Model used when ``--model`` is not given: the small model shipped with the package.
DEFAULT_MODEL = BUNDLED_MODEL_NAME

#: Exceptions that mean "the user gave something wrong", reported without a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, FileNotFoundError, FileExistsError, NotADirectoryError, PermissionError)

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` to stderr and return a ``typer.Exit`` to raise."""
    first = " ".join(str(message).strip().splitlines()) or "unknown error"
    typer.echo(f"error: {first}", err=True)
    return typer.Exit(code=code)


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """Context manager form of :func:`run_cli_errors`."""
    try:
        yield
    except USER_ERRORS as e:
        message = str(e)
        if isinstance(e, FileNotFoundError) and e.filename and str(e.filename) not in message:
            message = f"{message}: {e.filename}"
        raise fail(message) from None


def run_cli_errors(func: F) -> F:
    """Decorator for a command function: user errors become ``error: ...`` and exit code 2.

    The signature is preserved (``functools.wraps``), so typer still reads the options.

    >>> @run_cli_errors
    ... def cmd(x: int) -> int:
    ...     return x
    >>> cmd(3)
    3
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with cli_errors():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def parse_float_list(text: str | float | int, name: str) -> list[float]:
    """``"0,90,180"`` -> ``[0.0, 90.0, 180.0]``; each entry must be a finite number.

    >>> parse_float_list("0, 90,-45.5", "--azimuth")
    [0.0, 90.0, -45.5]
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        parts = [str(text)]
    else:
        parts = [p.strip() for p in str(text).split(",")]
    if not parts or any(p == "" for p in parts):
        raise ValueError(f"{name} must be a number or a comma-separated list of numbers, got {text!r}")
    values = []
    for p in parts:
        try:
            v = float(p)
        except ValueError:
            raise ValueError(f"{name}: {p!r} is not a number (in {text!r})") from None
        if not math.isfinite(v):
            raise ValueError(f"{name}: values must be finite, got {p!r}")
        values.append(v)
    return values


def broadcast_lists(**lists: list[float]) -> list[dict[str, float]]:
    """Zip equal-length lists, repeating single values: ``azimuth=[0, 90], elevation=[10]`` ->
    ``[{"azimuth": 0, "elevation": 10}, {"azimuth": 90, "elevation": 10}]``."""
    n = max(len(v) for v in lists.values())
    for k, v in lists.items():
        if len(v) not in (1, n):
            sizes = ", ".join(f"--{kk.replace('_', '-')} has {len(vv)}" for kk, vv in lists.items())
            raise ValueError(f"list options must have the same length or a single value ({sizes})")
    return [{k: (v[0] if len(v) == 1 else v[i]) for k, v in lists.items()} for i in range(n)]


def parse_device(text: str = "auto"):
    """:func:`zero123.devices.resolve_device` with errors naming ``--device``."""
    from ..devices import resolve_device

    with option_names("device"):
        return resolve_device(text)


def parse_dtype(text: str, device) -> "torch.dtype":  # noqa: F821
    """:func:`zero123.devices.resolve_dtype` with errors naming ``--dtype``."""
    from ..devices import resolve_dtype

    with option_names("dtype"):
        return resolve_dtype(text, device)


@contextlib.contextmanager
def option_names(*names: str) -> Iterator[None]:
    """Turn a library ``ValueError`` that starts with one of the argument ``names``
    (``"steps must be ..."``) into one that starts with its command-line option
    (``"--steps must be ..."``): the library names its arguments, the CLI its options.

    >>> try:
    ...     with option_names("max_batch"):
    ...         raise ValueError("max_batch must be positive")
    ... except ValueError as e:
    ...     print(e)
    --max-batch must be positive
    """
    try:
        yield
    except ValueError as e:
        message = str(e)
        head = message.split(" ", 1)[0]
        if head in names:
            raise ValueError("--" + head.replace("_", "-") + message[len(head):]) from None
        raise


def print_json(obj: Any) -> None:
    """Write ``obj`` as indented JSON to stdout."""
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")
    sys.stdout.flush()
