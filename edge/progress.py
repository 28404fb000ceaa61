"""Progress of long work (library build, training, evaluation, calibration) on a terminal.

    with progress("building library", total=len(files)) as advance:
        for f in files:
            ...
            advance(1)

A rich progress bar on stderr when stderr is a terminal; silent otherwise (journal, pipes,
tests), so logs and machine-read output stay clean.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Advance = Callable[[int], None]


def _noop(_: int) -> None:
    return None


def on_terminal() -> bool:
    """True when stderr is attached to a terminal."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


@contextmanager
def progress(
    description: str, total: int | None = None, *, enabled: bool | None = None
) -> Iterator[Advance]:
    """Yield ``advance(n)``; a rich bar on a terminal (or when *enabled*), else a no-op."""
    show = on_terminal() if enabled is None else enabled
    if not show:
        yield _noop
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)

        def advance(n: int = 1) -> None:
            bar.advance(task, n)

        yield advance
