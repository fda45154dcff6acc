"""The command-line tests' shared database: the sample loaded once per test module, and a private copy for a test
that changes it."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.running import Run, run_in
from tests.cli.sample import Loaded, load


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    return load(tmp_path_factory.mktemp("cli"))


@pytest.fixture
def copy(loaded: Loaded, tmp_path: Path) -> Callable[..., Run]:
    """A private copy of the loaded database (a consistent snapshot, whatever else reads it); returns a runner."""
    source, target = sqlite3.connect(loaded.folder / "wnb.db"), sqlite3.connect(tmp_path / "wnb.db")
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()

    def run(*args: str, columns: int | None = None) -> Run:
        return run_in(tmp_path, *args, columns=columns)

    return run
