"""A batch job's folder: ``batch.json`` (the settings), one folder per finished row, ``results.jsonl``.

``results.jsonl`` holds one JSON line per row (:meth:`~zero123.batch.runner.RowResult.to_json`).
While a job runs, each result is appended and flushed to disk (``fsync``) as it arrives, so a
killed job loses at most the row in flight. When a process shares the folder with others (shards
of a job array, ``accelerate launch`` processes) it appends to its own part file in
``results.d/`` instead; parts are merged into ``results.jsonl`` under a file lock at the start and
the end of every run. Each merge rewrites ``results.jsonl`` atomically with exactly one line per
row, in manifest order: there are never duplicate lines.

A rerun skips a row when its folder exists and matches (the result line, or the folder's
``row.json``, has the same image, cameras, seed and settings); every other row of the run is
redone, and its old line dropped before the run starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from ..utils.fileio import atomic_write
from .manifest import BatchRow
from .runner import RowResult, read_row_file

RESULTS = "results.jsonl"
PARTS = "results.d"
SETTINGS = "batch.json"
FORMAT = "zero123-batch/1"
_LOCK = ".results.lock"


def open_job_folder(out_dir: str | os.PathLike, settings: dict[str, Any]) -> Path:
    """Create ``out_dir`` or check it holds a job with the same ``settings`` (``batch.json``).

    Raises:
        ValueError: the folder holds other files but no ``batch.json``, or a job with other settings.
        NotADirectoryError: ``out_dir`` is a file.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {str(out)!r} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    path = out / SETTINGS
    if not path.is_file():
        if any(not p.name.startswith(".") for p in out.iterdir()):
            raise ValueError(f"--out {str(out)!r} is not empty and has no {SETTINGS}; choose an empty or new folder")
        with atomic_write(path, "w") as f:
            json.dump({"format": FORMAT, **settings}, f, indent=1)
        return out
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path} is unreadable ({e}); remove the folder or choose another --out") from None
    old.pop("format", None)
    if old != settings:
        diff = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in _differences(old, settings).items())
        raise ValueError(f"--out {str(out)!r} holds a job with other settings ({diff}); rerun with the same "
                         "settings to resume it, or choose another --out")
    return out


def _differences(old: Any, new: Any, prefix: str = "") -> dict[str, tuple[Any, Any]]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: dict[str, tuple[Any, Any]] = {}
        for k in sorted(set(old) | set(new)):
            out.update(_differences(old.get(k), new.get(k), f"{prefix}{k}."))
        return out
    return {} if old == new else {prefix.rstrip("."): (old, new)}


def remove_stale_temporaries(out: Path, ids: Iterable[str]) -> None:
    """Remove what an interrupted run left of the rows ``ids``: ``.<id>.XXXX.tmp`` folders (a row
    being written) and ``.<id>.old-PID`` folders (a row being replaced)."""
    wanted = set(ids)
    for p in out.iterdir():
        name = p.name
        if not name.startswith(".") or not p.is_dir():
            continue
        if name.endswith(".tmp"):
            row_id = name[1:-4].rsplit(".", 1)[0]
        elif ".old-" in name:
            row_id = name[1:].rsplit(".old-", 1)[0]
        else:
            continue
        if row_id in wanted:
            shutil.rmtree(p, ignore_errors=True)


class ResultsStore:
    """The result lines of a job folder, for one process.

    Args:
        out: the job folder.
        part: ``None`` when this process is the folder's only writer (it appends to
            ``results.jsonl``), else a name unique among the processes sharing the folder (it
            appends to ``results.d/<part>.jsonl``).
    """

    def __init__(self, out: Path, part: str | None = None):
        self.out, self.part = out, part
        self.path = out / RESULTS if part is None else out / PARTS / f"{part}.jsonl"
        self._file: IO[str] | None = None

    # ------------------------------------------------------------------ start and finish
    def begin(self, manifest: Sequence[BatchRow], mine: Sequence[BatchRow], settings: dict[str, Any]) -> list[RowResult]:
        """Merge what earlier runs recorded, drop the lines of this run's rows that are not
        finished, and open this process's file for appending. Returns the finished rows of
        ``mine`` (to skip), each as its recorded result."""
        with self._locked():
            for tmp in self.out.glob(f".{RESULTS}.*.tmp"):  # a rewrite cut short by a kill
                tmp.unlink(missing_ok=True)
            lines = self._read_all()
            finished: list[RowResult] = []
            for row in mine:
                line = lines.get(row.id)
                if row.error is None and self._finished(row, line, settings):
                    if line is None or line.get("status") != "ok":  # folder complete, line lost: from row.json
                        line = self._line_from_folder(row)
                        lines[row.id] = line
                    finished.append(RowResult.from_json(line, row))
                else:
                    lines.pop(row.id, None)
            self._rewrite(lines, manifest, remove_parts=self.part is None)
            if self.part is not None:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")
        return finished

    def append(self, result: RowResult) -> None:
        """Add one result line, on disk before this returns (flush + fsync)."""
        if self._file is None:
            raise RuntimeError("ResultsStore.append before begin()")
        self._file.write(json.dumps(result.to_json()) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def finish(self, manifest: Sequence[BatchRow]) -> None:
        """Close this process's file and merge every part into ``results.jsonl`` (manifest order)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        with self._locked():
            self._rewrite(self._read_all(), manifest, remove_parts=self.part is None)
            if self.part is not None:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
                with contextlib.suppress(OSError):  # the last process out removes the empty folder
                    self.path.parent.rmdir()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    # ------------------------------------------------------------------ reading
    def _read_all(self) -> dict[str, dict[str, Any]]:
        """One line per id from ``results.jsonl`` and every part (a complete ``ok`` line wins over
        a failed one, then the later one); a torn last line (a killed writer) is ignored."""
        best: dict[str, dict[str, Any]] = {}
        files = [self.out / RESULTS, *sorted((self.out / PARTS).glob("*.jsonl"))]
        for path in files:
            for line in _read_lines(path):
                old = best.get(line["id"])
                if old is None or _rank(line) >= _rank(old):
                    best[line["id"]] = line
        return best

    def _finished(self, row: BatchRow, line: dict[str, Any] | None, settings: dict[str, Any]) -> bool:
        folder = self.out / row.id
        if not folder.is_dir():
            return False
        if line is not None and line.get("status") == "ok" and _matches(line, row, settings):
            return True
        on_disk = read_row_file(folder)
        return on_disk is not None and _matches(on_disk, row, settings) and all(
            (self.out / f).is_file() for f in on_disk.get("files", []))

    def _line_from_folder(self, row: BatchRow) -> dict[str, Any]:
        on_disk = read_row_file(self.out / row.id) or {}
        return RowResult(row=row, status="ok", task=on_disk.get("task", ""), settings=on_disk.get("settings", {}),
                         files=list(on_disk.get("files", []))).to_json()

    # ------------------------------------------------------------------ writing
    def _rewrite(self, lines: dict[str, dict[str, Any]], manifest: Sequence[BatchRow], *, remove_parts: bool) -> None:
        order = {r.id: r.index for r in manifest}
        # failed lines of ids no longer in the manifest are stale; finished rows stay listed
        keep = [v for k, v in lines.items() if k in order or v.get("status") == "ok"]
        keep.sort(key=lambda v: (order.get(v["id"], len(order)), v["id"]))
        with atomic_write(self.out / RESULTS, "w") as f:
            for v in keep:
                f.write(json.dumps(v) + "\n")
        if remove_parts:
            shutil.rmtree(self.out / PARTS, ignore_errors=True)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """An exclusive lock on the job folder's results (``fcntl.flock``; none where it is missing)."""
        try:
            import fcntl
        except ImportError:  # not POSIX: one writer per folder
            yield
            return
        with open(self.out / _LOCK, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


def read_results(out_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The lines of a job folder's ``results.jsonl``."""
    return list(_read_lines(Path(out_dir) / RESULTS))


def _read_lines(path: Path) -> Iterator[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    for raw in text.splitlines():
        try:
            line = json.loads(raw)
        except json.JSONDecodeError:
            continue  # torn line of a killed writer: that row is redone
        if isinstance(line, dict) and isinstance(line.get("id"), str) and line.get("status") in ("ok", "failed"):
            yield line


def _rank(line: dict[str, Any]) -> tuple[int, float]:
    return (line.get("status") == "ok", float(line.get("finished_at") or 0.0))


def _matches(recorded: dict[str, Any], row: BatchRow, settings: dict[str, Any]) -> bool:
    key = row.key()
    return all(recorded.get(k) == v for k, v in key.items()) and recorded.get("settings") == settings
