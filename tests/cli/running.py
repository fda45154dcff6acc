"""How the command-line tests run `wnb`: in this process through the Typer app the console script runs (a process
each took one to two seconds), or as its own process for what only a process shows (help, a one-line error on
stderr)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import ROOT
from tests.factories import run_wnb

WNB = Path(sys.executable).parent / "wnb"
RULES = ROOT / "rules" / "default"


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, self.err
        return json.loads(self.out)

    @property
    def words(self) -> str:
        """The output with line wrapping and table borders flattened to single spaces."""
        return " ".join(re.sub(r"[│┃|]", " ", self.out).split())


def run_in(folder: Path, *args: str, db: Path | None = None, columns: int | None = None) -> Run:
    """`wnb ARGS` in `folder`, in this process (tests.factories.run_wnb), on the database in the folder or `db`."""
    env = {"COLUMNS": str(columns) if columns else None, "LINES": None, "WNB_RULES_DIR": str(RULES)}
    ran = run_wnb(folder, *args, env={**env, "WNB_DATABASE_URL": f"sqlite:///{db or folder / 'wnb.db'}"})
    return Run(ran.returncode, ran.stdout, ran.stderr)


def run_process(folder: Path, *args: str, columns: int | None = None) -> Run:
    """`wnb ARGS` as its own process, through the installed console script, for the tests of the process itself."""
    env = {key: value for key, value in os.environ.items() if key not in ("COLUMNS", "LINES", "WNB_DATABASE_URL")}
    env.update(WNB_DATABASE_URL=f"sqlite:///{folder / 'wnb.db'}", WNB_RULES_DIR=str(RULES))
    if columns:
        env["COLUMNS"] = str(columns)
    result = subprocess.run(
        [str(WNB), *args], cwd=folder, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    return Run(result.returncode, result.stdout, result.stderr)


def assert_one_line_error(result: Run, *words: str) -> None:
    assert result.code != 0
    assert "Traceback" not in result.err, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("wnb: error:"), lines[0]
    for word in words:
        assert word in lines[0], lines[0]
