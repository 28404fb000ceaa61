"""Where things are, for tests in any tier."""

from __future__ import annotations

from pathlib import Path

SUPPORT = Path(__file__).resolve().parent
TESTS = SUPPORT.parent
TEST_DATA = TESTS / "data"
PROJECT = TESTS.parent
#: ``../shared/data`` beside the project (real spectra; tests using it skip when it is absent).
SHARED_DATA = PROJECT.parent / "shared" / "data"
