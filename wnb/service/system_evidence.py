"""The evidence of the hazard log's system controls, run at propose (issue 15): a control `system: NAME` is shown to
work by named tests of wnb's own suite, and proposing a version runs them, in a pytest subprocess from the source
checkout, and records each test's outcome, the counts and the time.

An installed package (a wheel, the container image) has no tests/ beside it: the evidence then says plainly that
the tests are not available in this installation, and nothing pretends they ran. `WNB_PROPOSE_TESTS=false` (the
suite's own setting, so a test that proposes does not run the suite inside the suite) records them as not run.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from wnb.core.hazards import HazardLog, suite_test_nodes
from wnb.rule_files import SOURCE_ROOT

log = structlog.get_logger(__name__)

TIMEOUT_SECONDS = 1800  # the named tests of the default log run in well under this on a small server
RAN, NOT_AVAILABLE, NOT_RUN, FAILED_TO_RUN = "run", "not available in this installation", "not run", "could not run"


def system_evidence(
    log_: HazardLog | None,
    enabled: bool,
    now: datetime,
    not_run_because: str = "WNB_PROPOSE_TESTS=false",
    root: Path = SOURCE_ROOT,
) -> dict[str, Any]:
    """Run the tests the log's system controls name and say how each went: `state` (run, not available in this
    installation, not run, could not run), `summary` (one line), `at`, `seconds`, `passed`, `failed`, `skipped` and
    `tests` (each `node` with its `outcome`: passed, failed, error, skipped or not found)."""
    nodes = suite_test_nodes(log_)
    base: dict[str, Any] = {"at": now.isoformat(), "named": len(nodes), "passed": 0, "failed": 0, "skipped": 0}
    base["tests"] = []
    if not nodes:
        return {**base, "state": NOT_RUN, "summary": "no system control names a test"}
    if not enabled:
        return {**base, "state": NOT_RUN, "summary": f"{len(nodes)} named tests not run ({not_run_because})"}
    if not (root / "tests").is_dir() or not (root / "pyproject.toml").is_file():
        return {
            **base,
            "state": NOT_AVAILABLE,
            "summary": f"{len(nodes)} named tests not available in this installation (no tests/ beside the package): "
            "run them in a source checkout of this wnb release",
        }
    if importlib.util.find_spec("pytest") is None:
        return {
            **base,
            "state": NOT_AVAILABLE,
            "summary": f"{len(nodes)} named tests not available in this installation (pytest is not installed)",
        }
    return {**base, **run_tests(nodes, root)}


def run_tests(nodes: Sequence[str], root: Path) -> dict[str, Any]:
    """Run `nodes` with pytest in a subprocess in `root` (one process, no plugins' options from the project's
    addopts) and read each one's outcome from its JUnit XML."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="wnb-evidence-") as folder:
        report = Path(folder) / "junit.xml"
        command = [sys.executable, "-m", "pytest", "-o", "addopts=", "-p", "no:cacheprovider", "-q"]
        command += [f"--junitxml={report}", "--", *nodes]
        env = {**os.environ, "WNB_PROPOSE_TESTS": "false"}  # a test that proposes does not run the suite again
        log.info("system_evidence_started", tests=len(nodes))
        try:
            done = subprocess.run(
                command, cwd=root, env=env, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
            )
        except subprocess.TimeoutExpired:
            return _could_not_run(nodes, started, f"pytest did not finish within {TIMEOUT_SECONDS} s")
        cases = _cases(report) if report.is_file() else None
    if cases is None:
        tail = " ".join((done.stdout + done.stderr).strip().splitlines()[-2:])[:300]
        return _could_not_run(nodes, started, f"pytest exited with {done.returncode} and no report: {tail}")
    tests = [{"node": node, "outcome": _outcome(node, cases)} for node in nodes]
    passed = sum(test["outcome"] == "passed" for test in tests)
    skipped = sum(test["outcome"] == "skipped" for test in tests)
    failed = len(tests) - passed - skipped
    seconds = round(time.monotonic() - started, 1)
    log.info("system_evidence_done", passed=passed, failed=failed, skipped=skipped)
    more = [f"{failed} failed" if failed else "", f"{skipped} skipped" if skipped else ""]
    return {
        "state": RAN,
        "summary": f"{passed} of {len(tests)} named tests passed in {seconds:.1f} s"
        + "".join(f", {word}" for word in more if word),
        "seconds": seconds,
        "passed": passed,
        "failed": failed,
        "skipped": skipped,
        "tests": tests,
    }


def _could_not_run(nodes: Sequence[str], started: float, why: str) -> dict[str, Any]:
    return {
        "state": FAILED_TO_RUN,
        "summary": f"the {len(nodes)} named tests could not be run: {why}",
        "seconds": round(time.monotonic() - started, 1),
        "failed": len(nodes),
        "tests": [{"node": node, "outcome": "not run"} for node in nodes],
    }


def _cases(report: Path) -> dict[tuple[str, str], str]:
    """Each test case of a JUnit XML report, by (classname, name), with its outcome."""
    cases: dict[tuple[str, str], str] = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        outcome = "passed"
        for child, word in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
            if case.find(child) is not None:
                outcome = word
                break
        cases[(case.get("classname", ""), case.get("name", ""))] = outcome
    return cases


def _outcome(node: str, cases: dict[tuple[str, str], str]) -> str:
    """The outcome of a node id (`tests/a/test_b.py::TestC::test_d[x]`) among the cases: JUnit names it by the
    dotted module (and class) and the test's name; a test named without its parameters passes when all of them do."""
    path, _, rest = node.partition("::")
    parts = rest.split("::")
    classname = ".".join([path.removesuffix(".py").replace("/", "."), *parts[:-1]])
    name = parts[-1]
    found = [
        outcome
        for (klass, case), outcome in cases.items()
        if klass == classname and (case == name or ("[" not in name and case.startswith(name + "[")))
    ]
    if not found:
        return "not found"
    for worst in ("error", "failed", "skipped"):
        if worst in found:
            return worst
    return "passed"
