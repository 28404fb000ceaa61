"""Progress of long work: a rich bar on a terminal, nothing otherwise."""

from __future__ import annotations

import pytest

from edge.progress import on_terminal, progress


def test_quiet_when_not_on_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    assert not on_terminal()  # pytest captures stderr: not a terminal
    with progress("work", total=3) as advance:
        for _ in range(3):
            advance(1)
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err == ""


def test_bar_when_enabled(capsys: pytest.CaptureFixture[str]) -> None:
    with progress("calibrating", total=4, enabled=True) as advance:
        for _ in range(4):
            advance(1)
    err = capsys.readouterr().err
    assert "calibrating" in err and "4/4" in err
