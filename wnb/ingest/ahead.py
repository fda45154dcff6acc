"""Read and check a large file's lines in a second process while this one ingests them.

Checking a line (its JSON, then the canonical event's model, then the fields' JSON text for the store) is
pure work, about a fifth of what ingesting the line costs, and needs no database. On a machine with two
cores another process can do it while this one evaluates and writes. That process reads the file with
`read_file`, checks each item with `wnb.core.items.check` and sends the checked items back in order, pickled in
batches through a pipe; it runs ahead only as far as the pipe's buffer and one batch, so memory does not grow
with the file.

Ingestion and what it stores are unchanged: the same items in the same order. Should the reader process
fail or die, iterating raises WnbError there; `Service.ingest` has then not begun the chunk it was gathering,
the chunks committed before stay (as after any interrupted ingest), and sending the file again completes it.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import IO, Any

from wnb import pipes
from wnb.core.errors import WnbError
from wnb.core.items import CheckedItem, RawItem, check
from wnb.ingest import file_format, read_file

# Smaller files are checked in this process: starting the reader process (a Python interpreter importing wnb)
# costs about a second of the other core, more than checking a few thousand lines.
AHEAD_FROM_BYTES = 2_000_000
BATCH = 500  # items per message from the reader process
PIPE_BYTES = 1 << 20


def read_checked(
    path: Path, format: str | None = None, ahead: bool | None = None
) -> Generator[RawItem | CheckedItem, None, None]:
    """The file's items for `Service.ingest`: checked in a second process when `ahead` (default: a large file).

    Exhaust or close() the generator to end the reader process (`contextlib.closing` does it on errors too).
    The file and its format are checked now, before the first item is asked for.
    """
    name = file_format(path, format)
    if ahead is None:
        ahead = path.stat().st_size >= AHEAD_FROM_BYTES
    return _closing(CheckedAhead(path, name) if ahead else read_file(path, name))


def _closing(items: Iterator[RawItem] | CheckedAhead) -> Generator[RawItem | CheckedItem, None, None]:
    try:
        yield from items
    finally:
        if isinstance(items, CheckedAhead):
            items.close()


class CheckedAhead(Iterator[CheckedItem]):
    """A file's items, checked by a reader process: its end of the pipe."""

    def __init__(self, path: Path, format: str, batch: int = BATCH) -> None:
        self.path = path
        self._process = pipes.start("wnb.ingest.ahead", str(path), format, str(batch), stdin=subprocess.DEVNULL)
        assert self._process.stdout is not None
        self._pipe: IO[bytes] = self._process.stdout
        # A deeper pipe (Linux: 1 MiB, some 4,000 items, instead of 64 KiB) lets the reader run further ahead,
        # so this process does not wait whenever the reader gets less of a busy machine for a moment.
        with contextlib.suppress(ImportError, AttributeError, OSError):  # elsewhere: the pipe as it is
            import fcntl

            fcntl.fcntl(self._pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        self._batch: Iterator[CheckedItem] = iter(())
        self._ended = False

    @property
    def pid(self) -> int:
        return self._process.pid

    def __next__(self) -> CheckedItem:
        while True:
            item = next(self._batch, None)
            if item is not None:
                return item
            if self._ended:
                raise StopIteration
            try:
                self._receive()
            except BaseException:
                self.close()
                raise

    def _receive(self) -> None:
        kind, value = self._message()
        if kind == "items":
            self._batch = iter(value)
        elif kind == "end":
            self._ended = True
            self.close()
        else:
            raise WnbError(f"{self.path}: {value}")

    def _message(self) -> tuple[str, Any]:
        try:
            kind, value = pipes.receive(self._pipe)
        except EOFError:
            code = self._process.wait()
            raise WnbError(
                f"{self.path}: the process checking its lines stopped (exit {code}) before the end of the file; "
                "what was ingested before stays, and sending the file again completes it"
            ) from None
        return kind, value

    def close(self) -> None:
        """End the reader process, finished or not."""
        self._ended = True
        self._batch = iter(())
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._pipe.close()

    def __del__(self) -> None:
        if hasattr(self, "_process"):
            self.close()


def serve(path: Path, format: str, out: IO[bytes], size: int = BATCH) -> None:
    """The reader process: every item of the file, checked, in batches; then the end, or why it failed."""
    batch: list[CheckedItem] = []
    try:
        for item in read_file(path, format):
            batch.append(check(item))
            if len(batch) == size:
                pipes.send(out, ("items", batch))
                batch = []
        if batch:
            pipes.send(out, ("items", batch))
        pipes.send(out, ("end", None))
    except (WnbError, OSError, UnicodeError) as error:
        pipes.send(out, ("error", str(error)))


if __name__ == "__main__":
    pipes.helper_main(lambda out: serve(Path(sys.argv[1]), sys.argv[2], out, int(sys.argv[3])))
