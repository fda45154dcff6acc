"""`wnb demo` from any folder, and help for the console script and every command and subcommand."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.cli.running import run_in, run_process


def test_demo_runs_from_any_folder_and_shows_flags_tasks_rejects_and_an_intact_audit_log(
    tmp_path: Path,
) -> None:
    result = run_in(tmp_path, "demo", columns=200)

    assert result.code == 0, result.err
    assert "Active flags (" in result.out
    assert "Open tasks (" in result.out
    assert "rows rejected to the data-quality queue" in result.out
    assert "audit log: intact" in result.out
    assert "Not brought: child known to children's social care" in result.words
    assert "safeguarding-plan-wnb" not in result.words
    assert (tmp_path / "wnb-demo.db").is_file()


def _command_paths() -> list[list[str]]:
    import typer.main

    from wnb.cli.main import app

    paths: list[list[str]] = [[]]

    def walk(command: Any, prefix: list[str]) -> None:
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            paths.append([*prefix, name])
            walk(sub, [*prefix, name])

    walk(typer.main.get_command(app), [])
    return paths


def test_the_console_script_prints_help(tmp_path: Path) -> None:
    result = run_process(tmp_path, "--help", columns=200)

    assert result.code == 0, result.err
    for command in (
        "context",
        "ingest",
        "sweep",
        "flags",
        "tasks",
        "task",
        "flag",
        "rejects",
        "audit",
        "explain",
        "rules",
        "demo",
    ):
        assert re.search(rf"│ {command}\s", result.out), command


def test_help_works_for_every_command_and_subcommand(tmp_path: Path) -> None:
    paths = _command_paths()
    assert ["task", "ack"] in paths and ["rules", "test"] in paths and ["audit", "verify"] in paths
    # One process runs the installed `wnb` entry point once per command, to keep the suite quick.
    script = (
        "import json, sys\n"
        "from importlib.metadata import entry_points\n"
        "main = entry_points(group='console_scripts')['wnb'].load()\n"
        "results = []\n"
        "for path in json.loads(sys.argv[1]):\n"
        "    sys.argv = ['wnb', *path, '--help']\n"
        "    try:\n"
        "        main()\n"
        "        code = 0\n"
        "    except SystemExit as stop:\n"
        "        code = stop.code or 0\n"
        "    sys.stdout.write('\\n@@@ ' + json.dumps([path, code]) + '\\n')\n"
    )
    env = {**os.environ, "COLUMNS": "200", "WNB_DATABASE_URL": f"sqlite:///{tmp_path / 'wnb.db'}"}
    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps(paths)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    chunks = re.split(r"\n@@@ (.*)\n", result.stdout)
    outputs = dict(zip((tuple(json.loads(marker)[0]) for marker in chunks[1::2]), chunks[0::2], strict=False))
    codes = {tuple(json.loads(marker)[0]): json.loads(marker)[1] for marker in chunks[1::2]}
    assert set(codes) == {tuple(path) for path in paths}
    for path, code in codes.items():
        assert code == 0, path
        assert "Usage: wnb " + " ".join(path) in " ".join(outputs[path].split()), path
    assert not (tmp_path / "wnb.db").exists()  # help touches no database
