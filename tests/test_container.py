"""The container image and the compose file, run for real: deploy/check-image.sh and deploy/check-compose.sh.

test_deploy.py reads the deploy files; these tests build the image and run it against PostgreSQL, which is
what showed the health check asking the wrong port and the build needing a PEP 517 build for durable-rules.

They need a docker daemon, and a first build takes a minute or more (and PyPI), so the suite runs the image
check by itself only where an earlier check left the image `wnb:check` (its layers are then cached: about
20 s, or 30 s after a change to wnb's code). WNB_CONTAINER_TEST chooses otherwise:

    WNB_CONTAINER_TEST=1 .venv/bin/python -m pytest tests/test_container.py        # build even from cold
    WNB_CONTAINER_TEST=compose .venv/bin/python -m pytest tests/test_container.py  # and the compose check
    WNB_CONTAINER_TEST=0 ...                                                        # never

The base is PYTHON_IMAGE when set; otherwise the stand-in made by deploy/local-base.sh when this machine has
one (Docker Hub may be out of reach), else the Dockerfile's default, python:3.11-slim.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import POSTGRES_SERVER, ROOT

DEPLOY = ROOT / "deploy"
CHECKED_IMAGE = "wnb:check"
LOCAL_BASE = "local/python:3.11-bookworm"
SETTING = os.environ.get("WNB_CONTAINER_TEST", "")


def _docker(*arguments: str) -> bool:
    """Whether a docker client (the one on PATH, or Debian's) runs the command successfully."""
    for client in ("docker", "/usr/bin/docker"):
        try:
            done = subprocess.run([client, *arguments], capture_output=True, timeout=30, check=False)
        except (FileNotFoundError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return True
    return False


def _why_not() -> str | None:
    """Why the image check cannot or should not run here; None when it should."""
    if SETTING == "0":
        return "WNB_CONTAINER_TEST=0"
    if not _docker("info"):
        return "no docker daemon answers (`docker info`)"
    if SETTING == "" and not _docker("image", "inspect", CHECKED_IMAGE):
        return (
            f"no {CHECKED_IMAGE} image from an earlier check, so the build would start cold (a minute or more): "
            "run WNB_CONTAINER_TEST=1 .venv/bin/python -m pytest tests/test_container.py"
        )
    return None


def _environment() -> dict[str, str]:
    """The scripts' settings: the test suite's PostgreSQL server, and the base image to build on."""
    server = make_url(POSTGRES_SERVER)
    environment = {
        **os.environ,
        "IMAGE": CHECKED_IMAGE,
        "PGHOST": server.host or "127.0.0.1",
        "PGPORT": str(server.port or 5432),
        "PGUSER": server.username or "postgres",
    }
    if server.password:
        environment["PGPASSWORD"] = server.password
    if "PYTHON_IMAGE" not in environment and _docker("image", "inspect", LOCAL_BASE):
        environment["PYTHON_IMAGE"] = LOCAL_BASE
    return environment


def _passes(script: str, checks: tuple[str, ...]) -> None:
    """Runs the script (unless it cannot or should not run here) and finds each check's `ok` line in its report."""
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    done = subprocess.run(
        [str(DEPLOY / script)], env=_environment(), capture_output=True, text=True, timeout=900, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for check in checks:
        assert f"ok - {check}" in done.stdout, done.stdout


@pytest.mark.slow
@pytest.mark.postgres
def test_image_runs_unprivileged_healthy_migrated_accepts_an_event_and_stops_on_sigterm(
    postgres_server: Any,
) -> None:
    _passes(
        "check-image.sh",
        (
            "wnb serve runs as uid 10001",
            "HEALTHCHECK reports healthy",
            "/health/ready answers 200",
            "serve migrated the new database",
            "a posted event is accepted, and the same event again is a duplicate",
            "wnb audit verify passes",
            "SIGTERM stops wnb serve cleanly (exit 0)",
        ),
    )


@pytest.mark.slow
def test_compose_runs_two_replicas_behind_nginx_on_one_database_and_stops_cleanly() -> None:
    if SETTING != "compose":
        pytest.skip("the compose check takes about two minutes and ports 8000-8002: WNB_CONTAINER_TEST=compose")
    _passes(
        "check-compose.sh",
        (
            "migrate made the schema once and exited 0",
            "/health/ready answers 200 through nginx (8000) and on each replica (8001, 8002)",
            "an event through nginx is accepted; the same event to either replica is a duplicate",
            "a feed file in the shared inbox is ingested by exactly one replica",
            "a backup taken in wnb-1 restores into a new database and verifies",
            "stop ends db, wnb-1, wnb-2 and lb with exit 0",
        ),
    )
