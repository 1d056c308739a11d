"""What every ``zero123`` command shares: the error idiom, the option declarations, threads,
progress display and small parsers.

Error idiom: library errors at public boundaries are ``ValueError`` / ``TypeError`` /
``FileNotFoundError`` (and friends) with a clear message; every command is registered through
:func:`command`, which turns them into ONE line ``error: <message>`` on stderr and exit code 2. Any
other exception is reported the same way as an internal error with exit code 1 (set
``ZERO123_DEBUG=1`` for the traceback); Ctrl-C exits with 130. Warnings print as one
``warning: ...`` line.

Options: each shared option is declared once here as an ``Annotated`` type (``OutOption``,
``DeviceOption``, ``DtypeOption``, ``SeedOption``, ``ThreadsOption``, the sampling group...), so
every command spells and documents it the same way. Nothing here imports torch at import time, so
``zero123 --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import math
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer

from ..assets import BUNDLED_MODEL_NAME
from ..devices import DEVICE_HELP, DTYPE_HELP
from ..utils.progress import progress_display  # noqa: F401  (the commands' progress display)

#: Model used when ``--model`` is not given: the small model shipped with the package.
DEFAULT_MODEL = BUNDLED_MODEL_NAME

#: Exceptions that mean "the user gave something wrong", reported without a traceback (exit 2).
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, FileNotFoundError, FileExistsError, NotADirectoryError, PermissionError)

F = TypeVar("F", bound=Callable[..., Any])

# ---------------------------------------------------------------------- shared options (declared once)
OutOption = Annotated[Path, typer.Option("-o", "--out", help="Output folder.")]
ModelOption = Annotated[str, typer.Option("--model", help="A model folder, an original .ckpt/.safetensors file, a known name, or 'bundled' (the small model shipped with the package).")]
DeviceOption = Annotated[str, typer.Option("--device", help=f"Device: {DEVICE_HELP}.")]
DtypeOption = Annotated[str, typer.Option("--dtype", help=f"Weights dtype: {DTYPE_HELP}.")]
SeedOption = Annotated[int, typer.Option("--seed", help="Random seed (the same seed gives the same result).")]
ThreadsOption = Annotated[Optional[int], typer.Option("--threads", min=1, help="CPU threads for torch (default: OMP_NUM_THREADS, else the cores the 1-minute load average says are free, at least 1).")]
TrustPickleOption = Annotated[bool, typer.Option("--trust-pickle", help="Allow unpickling an original Lightning .ckpt (runs code from the file: only for files you trust).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
ProgressOption = Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress on stderr.")]
# procedural-object and renderer group (render-dataset, eval render-testset)
BackendOption = Annotated[str, typer.Option("--backend", help="Renderer: gl (moderngl on EGL, fast), torch (pure PyTorch) or auto.")]
MinPartsOption = Annotated[int, typer.Option("--min-parts", help="Procedural objects: fewest parts, body included (a test set should use its training set's).")]
MaxPartsOption = Annotated[int, typer.Option("--max-parts", help="Procedural objects: most parts.")]
TextureProbabilityOption = Annotated[float, typer.Option("--texture-probability", help="Procedural objects: chance a part is textured.")]
KindOption = Annotated[str, typer.Option("--kind", help="Procedural objects: 'primitives' (random assemblies of 2-8 primitives) or 'objects' (upright vases, bottles, cups, books, crates, cabinets, tables, chairs, mugs...).")]
# sampling group (nvs, batch, reconstruct, eval nvs): --quality picks a preset, --steps/--solver override it
#: ``--quality`` when not given: the preset the held-out quality-vs-steps table favours
#: (docs/benchmarks.md, "Solvers: quality against steps"); the Python API's default stays "original".
DEFAULT_QUALITY = "fast"
QualityOption = Annotated[str, typer.Option("--quality", help="Sampler preset: fast (Euler ancestral, 10 steps: held-out PSNR, SSIM and mask IoU no worse than original with 4.9x fewer U-Net calls) or original (the original demo: DDIM, 50 steps on the original grid, eta 1). --steps and --solver override it.")]
SolverOption = Annotated[Optional[str], typer.Option("--solver", help="Sampler: ddim (original grid), dpm++ (DPM-Solver++ 2M), euler-a (Euler ancestral) or unipc (default: the --quality preset's).")]
StepsOption = Annotated[Optional[int], typer.Option("--steps", help="Solver steps S (default: the --quality preset's; DDIM on the original grid: S = 50 runs 49 steps).")]
GuidanceOption = Annotated[float, typer.Option("--guidance", help="Classifier-free guidance scale (1.0 = conditional branch only).")]
EtaOption = Annotated[float, typer.Option("--eta", help="DDIM eta (1.0 = the original demo's stochastic sampler).")]
MaxBatchOption = Annotated[Optional[int], typer.Option("--max-batch", help="Largest U-Net batch per call (bounds memory).")]


# ---------------------------------------------------------------------- the error idiom
def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` (one line) to stderr and return a ``typer.Exit`` to raise."""
    first = " ".join(str(message).strip().splitlines()) or "unknown error"
    typer.echo(f"error: {first}", err=True)
    return typer.Exit(code=code)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    typer.echo("warning: " + " ".join(str(message).strip().splitlines()), err=True)


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """Report what goes wrong inside the block in the one CLI way (see the module docstring)."""
    from typer.exceptions import TyperException

    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            yield
        except (typer.Exit, typer.Abort, TyperException):  # typer's own exits and usage errors
            raise
        except USER_ERRORS as e:
            message = str(e)
            if isinstance(e, FileNotFoundError) and e.filename and str(e.filename) not in message:
                message = f"{message}: {e.filename}"
            raise fail(message) from None
        except KeyboardInterrupt:
            raise fail("interrupted", code=130) from None
        except Exception as e:
            if os.environ.get("ZERO123_DEBUG"):
                raise
            raise fail(f"internal error: {type(e).__name__}: {e} (rerun with ZERO123_DEBUG=1 for the traceback)", code=1) from None


def run_cli_errors(func: F) -> F:
    """Wrap a command function: :func:`cli_errors` around it, and torch's CPU threads set from its
    ``threads`` argument (``--threads``) first when it has one. The signature is preserved
    (``functools.wraps``), so typer still reads the options.

    >>> @run_cli_errors
    ... def cmd(x: int) -> int:
    ...     return x
    >>> cmd(3)
    3
    """
    takes_threads = "threads" in inspect.signature(func).parameters

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with cli_errors():
            if takes_threads:
                from ..devices import configure_threads

                with option_names("threads"):
                    configure_threads(kwargs.get("threads"))
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def command(app: typer.Typer, name: str, func: Callable[..., Any]) -> None:
    """Register ``func`` as ``name`` on ``app`` with the error idiom (:func:`run_cli_errors`): the
    one way commands are added, so none can miss it."""
    app.command(name)(run_cli_errors(func))


@contextlib.contextmanager
def option_names(*names: str) -> Iterator[None]:
    """Turn a library ``ValueError`` (or ``FileNotFoundError``) that starts with one of the argument ``names``
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
    except (ValueError, FileNotFoundError) as e:
        message = str(e)
        head = message.split(" ", 1)[0]
        if head.rstrip(":") in names:
            raise type(e)("--" + head.replace("_", "-") + message[len(head):]) from None
        raise


def parse_sampling(quality: str, *, steps: int | None = None, solver: str | None = None, guidance: float | None = None,
                   eta: float | None = None, max_batch: int | None = None):
    """:func:`zero123.nvs.sampling_preset` for the sampling options, errors naming the option
    (``--quality``, ``--steps``...). Options left unset (``None``) take the preset's value."""
    from ..nvs import sampling_preset

    with option_names("quality", "steps", "solver", "guidance", "eta", "max_batch"):
        return sampling_preset(quality, steps=steps, solver=solver, guidance=guidance, eta=eta, max_batch=max_batch)


# ---------------------------------------------------------------------- devices, outputs, progress
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


def check_output_dir(path: Path, option: str = "-o/--out") -> None:
    """Fail now, before any slow work, if ``path`` cannot become an output folder: it is a file, it
    lies under a file, or it (or the folder it would be created in) is not writable. Creates nothing.
    """
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise NotADirectoryError(f"{option} {str(path)!r} exists and is not a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(f"{option} {str(path)!r} is not writable")
        return
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise NotADirectoryError(f"{option} {str(path)!r} cannot be created: {str(parent)!r} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"{option} {str(path)!r} cannot be created: {str(parent)!r} is not writable")


# ---------------------------------------------------------------------- parsers and output
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


def print_json(obj: Any) -> None:
    """Write ``obj`` as indented JSON to stdout."""
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")
    sys.stdout.flush()
