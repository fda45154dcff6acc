"""Messages between wnb and a helper process of its own (wnb/ingest/ahead.py's reader, wnb/matcher/process.py's
matcher): length-prefixed pickles over the helper's standard input and output.

Pickles are safe here because both ends are the same wnb: a helper is started with this process's own wnb
package first on its path, and speaks to no one else.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

_LENGTH = struct.Struct(">I")


def start(module: str, *args: str, stdin: int) -> subprocess.Popen[bytes]:
    """`python -m module args`, with this process's wnb first on its path; its standard output is the pipe
    its messages come back on."""
    package_root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, "-m", module, *args], stdin=stdin, stdout=subprocess.PIPE, env=env)


def send(out: IO[bytes], value: Any) -> None:
    body = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_LENGTH.pack(len(body)) + body)
    out.flush()


def receive(pipe: IO[bytes]) -> Any:
    """The next message; EOFError at the end of the pipe, even in the middle of a message (the sender died)."""
    header = pipe.read(_LENGTH.size)
    size = _LENGTH.unpack(header)[0] if len(header) == _LENGTH.size else 0
    body = pipe.read(size) if size else b""
    if not size or len(body) != size:
        raise EOFError
    return pickle.loads(body)


def helper_main(serve: Callable[[IO[bytes]], None]) -> None:
    """A helper process's entry: `serve` writes its messages to what was standard output, and anything else
    printed goes to standard error instead of into the pipe. It ends quietly when the other end stops reading."""
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    with contextlib.suppress(BrokenPipeError):
        try:
            serve(out)
        finally:
            out.close()
