"""How much CPU a `wnb` command spends before it does anything (issue 17): `wnb --help`, and `wnb tasks --json`
on the demo database, beside the interpreter's own start (`python -c pass`).

    .venv/bin/python bench/cli_startup.py             # median of 5 runs each
    .venv/bin/python bench/cli_startup.py --runs 9

Each run is a fresh process; its CPU is user + sys (os.wait4), which a shared machine's load changes far less
than wall time. Targets, over the interpreter's start: `wnb --help` under 0.3 s, `wnb tasks --json` under 0.6 s.
The demo database is made first by `wnb demo` in a scratch folder (its CPU is not counted); that run also
leaves wnb's modules compiled (bytecode in __pycache__), as an installed wnb has them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = Path(sys.executable).parent
TARGETS = {"wnb --help": 0.3, "wnb tasks --json": 0.6}


def cpu_seconds(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    """The user + sys CPU seconds of one run of `command` (which must succeed)."""
    child = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"{' '.join(command)} exited {child.returncode}")
    return usage.ru_utime + usage.ru_stime


def median_cpu(command: list[str], runs: int, cwd: Path, env: dict[str, str]) -> float:
    return statistics.median(cpu_seconds(command, cwd, env) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each command (the median is printed)")
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory(prefix="wnb-cli-bench-") as scratch:
        folder = Path(scratch)
        # Every run after the first finds wnb's modules compiled, as an installed wnb does (pip compiles them):
        # PYTHONDONTWRITEBYTECODE would compile them again in every run.
        env = {key: value for key, value in os.environ.items() if not key.startswith(("WNB_", "PYTHONDONTWRITE"))}
        env["WNB_DATABASE_URL"] = f"sqlite:///{folder / 'wnb-demo.db'}"
        cpu_seconds([str(BIN / "wnb"), "demo"], folder, env)
        baseline = median_cpu([sys.executable, "-c", "pass"], runs, folder, env)
        print(f"CPU (user + sys), median of {runs} runs; targets are over the interpreter's start")
        print(f"  python -c pass      {baseline:6.3f} s  (the baseline)")
        for name, target in TARGETS.items():
            spent = median_cpu([str(BIN / "wnb"), *name.split()[1:]], runs, folder, env) - baseline
            verdict = "ok" if spent < target else "OVER"
            print(f"  {name:<19} {spent:6.3f} s  over the baseline (target < {target} s: {verdict})")


if __name__ == "__main__":
    main()
