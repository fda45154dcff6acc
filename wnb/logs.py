"""structlog set-up, once, at the entry points: a console renderer on a terminal, JSON lines otherwise.

Log events carry ids only (event, flag, task, reject ids, counts): never names, dates of birth or feed text.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from importlib.util import find_spec
from types import ModuleType


class _CurrentStderr:
    """Whatever sys.stderr is when a line is written, not when logging was set up: a caller that swaps the
    stream for a while (a test runner, an in-process CLI runner) and closes it must not break later logging."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _ConfigureWhenImported:
    """A finder on sys.meta_path that sets structlog up at `level` as soon as structlog is first imported, then
    steps aside; it finds nothing itself (the other finders find structlog)."""

    def __init__(self, level: int) -> None:
        self.level = level

    def find_spec(self, name: str, path: Sequence[str] | None, target: ModuleType | None = None) -> ModuleSpec | None:
        if name != "structlog":
            return None
        _forget_pending()
        spec = find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module
        level = self.level

        def exec_module(module: ModuleType) -> None:
            run(module)
            configure(level)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]  # this spec's own loader
        return spec


def _forget_pending() -> None:
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _ConfigureWhenImported)]


def configure_when_used(level: int) -> None:
    """configure(level) now if structlog is imported, else the moment it is: a command that imports nothing that
    logs (`wnb tasks` reading a SQLite file) does not pay a tenth of a second of CPU to import structlog."""
    if "structlog" in sys.modules:
        configure(level)
    else:
        _forget_pending()
        sys.meta_path.insert(0, _ConfigureWhenImported(level))


def configure(level: int = logging.INFO) -> None:
    import structlog

    _forget_pending()  # this set-up is the one that holds
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer() if sys.stderr.isatty() else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]  # write+flush suffice
        cache_logger_on_first_use=True,
    )
