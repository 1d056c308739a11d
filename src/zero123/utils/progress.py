"""The one progress display of the library and the commands: rich, on stderr, so stdout stays
clean for ``--json``. It is live on a terminal and leaves nothing behind (transient): in a log file
or a pipe it prints nothing at all, so a failing command's output is its one ``error:`` line.
"""

from __future__ import annotations


def progress_display(enabled: bool = True, *, info: bool = False):
    """A ``rich.progress.Progress`` (use as a context manager): per task its description, a bar, the
    count, elapsed and remaining time, and with ``info=True`` a free-text ``info`` field
    (``progress.update(task, info="loss 0.12")``; tasks default to an empty one).

    >>> with progress_display(enabled=False) as bar:
    ...     task = bar.add_task("work", total=2)
    ...     bar.advance(task)
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
    if info:
        columns.append(TextColumn("{task.fields[info]}"))
    columns += [TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
    progress = Progress(*columns, console=Console(stderr=True), transient=True, disable=not enabled)
    if info:
        add_task = progress.add_task

        def add_with_info(description, **kw):
            kw.setdefault("info", "")
            return add_task(description, **kw)

        progress.add_task = add_with_info
    return progress
