"""deploy/: the image, the compose file, the systemd unit and the operations guide hold what a trust relies on.

Docker is not run here (no daemon on CI): the files are parsed and checked for the essentials, the systemd
unit goes through `systemd-analyze verify` when that tool is installed, and every `wnb` command the guide
names must exist in the command line.
"""

from __future__ import annotations

import configparser
import importlib
import importlib.util
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from tests.conftest import ROOT
from wnb.cli.main import app

DEPLOY = ROOT / "deploy"
WNB = Path(sys.executable).parent / "wnb"
INSTALLED_WNB = "/opt/wnb/.venv/bin/wnb"  # where the unit expects the install (OPERATIONS.md)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, arguments = line.partition(" ")
            found.append((instruction.upper(), arguments.strip()))
    return found


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(index for index, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[last_from:]


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def replicas() -> dict[str, dict[str, Any]]:
    """The compose services that run `wnb serve`."""
    return {
        name: service for name, service in compose()["services"].items() if service.get("command", [])[:1] == ["serve"]
    }


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)  # systemd repeats some keys
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive in systemd
    parser.read_string((DEPLOY / "wnb.service").read_text())
    return parser


# ---- the image ----


def test_image_runs_as_a_non_root_user() -> None:
    users = [arguments for name, arguments in final_stage() if name == "USER"]
    assert users, "the final stage sets no USER, so it runs as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")


def test_image_health_check_asks_the_liveness_route() -> None:
    checks = [arguments for name, arguments in final_stage() if name == "HEALTHCHECK"]
    assert len(checks) == 1
    assert "/health/live" in checks[0]


def image_settings() -> dict[str, str]:
    """The WNB_ settings the final stage's ENV instructions give."""
    stage = final_stage()
    return dict(re.findall(r"(WNB_[A-Z_]+)=(\S+)", " ".join(arguments for name, arguments in stage if name == "ENV")))


def test_image_starts_wnb_serve_listening_beyond_loopback() -> None:
    stage = dict(final_stage())
    command = [*yaml.safe_load(stage["ENTRYPOINT"]), *yaml.safe_load(stage["CMD"])]
    assert command[:2] == ["wnb", "serve"]
    host = command[command.index("--host") + 1] if "--host" in command else image_settings()["WNB_HOST"]
    assert host == "0.0.0.0"


def test_image_health_check_follows_the_port_serve_listens_on() -> None:
    # `serve --port` would move the server but not the check: the port comes from WNB_PORT, read by both.
    stage = dict(final_stage())
    assert "--port" not in yaml.safe_load(stage["CMD"])
    assert image_settings()["WNB_PORT"] == "8000"
    assert "WNB_PORT" in stage["HEALTHCHECK"]


def test_image_builds_from_python_311_slim_with_a_compiler_for_durable_rules() -> None:
    # Every stage starts from the PYTHON_IMAGE argument (or an earlier stage), which defaults to the official
    # image; deploy/local-base.sh's stand-in is passed with --build-arg where Docker Hub is out of reach.
    instructions = dockerfile_instructions()
    defaults = dict(arguments.split("=", 1) for name, arguments in instructions if name == "ARG" and "=" in arguments)
    stages = {arguments.split()[-1] for name, arguments in instructions if name == "FROM" and " AS " in arguments}
    bases = [arguments.split()[0] for name, arguments in instructions if name == "FROM"]
    resolved = [re.sub(r"\$\{(\w+)\}", lambda found: defaults[found.group(1)], base) for base in bases]
    assert resolved and all(base == "python:3.11-slim" or base in stages for base in resolved)
    assert resolved[-1] == "python:3.11-slim"
    runs = " ".join(arguments for name, arguments in instructions if name == "RUN")
    assert "gcc" in runs


def test_image_copies_only_paths_that_exist_in_the_repository() -> None:
    for name, arguments in dockerfile_instructions():
        if name == "COPY" and not arguments.startswith("--from"):
            *sources, _ = arguments.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"


def test_image_ruleset_setting_points_at_the_ruleset_it_copies() -> None:
    stage = final_stage()
    settings = image_settings()
    copies = [arguments.split() for name, arguments in stage if name == "COPY" and not arguments.startswith("--")]
    rules_dir = Path(settings["WNB_RULES_DIR"])
    found = [
        ROOT / source / rules_dir.relative_to(target) for source, target in copies if rules_dir.is_relative_to(target)
    ]
    assert found and (found[0] / "ruleset.yaml").is_file(), f"WNB_RULES_DIR={rules_dir} is not a copied ruleset"


# ---- the compose file ----


def test_compose_runs_postgresql_15_with_a_health_check() -> None:
    database = compose()["services"]["db"]
    assert str(database["image"]).startswith("postgres:15")
    assert "pg_isready" in " ".join(database["healthcheck"]["test"])
    assert any(str(volume).endswith(":/var/lib/postgresql/data") for volume in database["volumes"])


def test_compose_runs_two_replicas_of_the_image_on_that_database() -> None:
    found = replicas()
    assert len(found) >= 2
    for name, service in found.items():
        assert service["build"]["dockerfile"] == "deploy/Dockerfile", name
        url = service["environment"]["WNB_DATABASE_URL"]
        assert url.startswith("postgresql+psycopg://") and "@db:5432/" in url, name
        assert service["depends_on"]["db"]["condition"] == "service_healthy", name


def test_compose_replicas_publish_different_ports() -> None:
    published = [port.rsplit(":", 1)[0] for service in replicas().values() for port in service["ports"]]
    assert len(published) == len(set(published)) >= 2


def _interpolated(value: str, secret: str) -> str:
    """A compose value as `docker compose` fills it in: required variables given `secret`, defaults taken."""
    value = re.sub(r"\$\{[A-Z_]+:\?[^}]*\}", secret, value)
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def test_compose_replicas_start_in_production_mode_once_given_their_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from wnb.settings import load_settings, refuse_unsafe_production

    for name, service in replicas().items():
        for variable, value in service["environment"].items():
            # ID:SECRET is what WNB_AUDIT_KEY takes; the other secrets take any string of 32 or more characters.
            monkeypatch.setenv(variable, _interpolated(str(value), "check:" + secrets.token_urlsafe(48)))
        settings = load_settings()
        assert settings.is_production, name
        refuse_unsafe_production(settings)  # raises when a secret is missing, a default or too short


def test_settings_file_example_cannot_start_production_until_its_secrets_are_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from wnb.core.errors import WnbError
    from wnb.settings import load_settings, refuse_unsafe_production

    for line in (DEPLOY / "wnb.env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            monkeypatch.setenv(*line.split("=", 1))
    with pytest.raises(WnbError, match="WNB_SESSION_SECRET"):
        refuse_unsafe_production(load_settings())


def test_compose_migrates_once_before_the_replicas_start() -> None:
    services = compose()["services"]
    assert services["migrate"]["command"] == ["db", "upgrade"]
    for name, service in replicas().items():
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name


def test_load_balancer_sends_to_every_replica() -> None:
    config = (DEPLOY / "nginx.conf").read_text()
    upstreams = set(re.findall(r"^\s*server\s+([\w-]+):8000", config, flags=re.MULTILINE))
    assert upstreams == set(replicas())
    mounted = [volume.split(":")[0] for volume in compose()["services"]["lb"]["volumes"]]
    assert all((DEPLOY / source).is_file() for source in mounted)


def settings_wnb_reads() -> set[str]:
    """WNB_ names in wnb's source, and WNB_<FIELD> for each field of a pydantic-settings model if it has one."""
    names = set()
    for path in (ROOT / "wnb").rglob("*.py"):
        names |= set(re.findall(r"\bWNB_[A-Z_]+\b", path.read_text()))
    try:
        settings = importlib.import_module("wnb.settings")
    except ImportError:
        return names
    fields = getattr(getattr(settings, "Settings", None), "model_fields", {})
    return names | {f"WNB_{name.upper()}" for name in fields}


def test_deploy_files_set_only_settings_that_wnb_reads() -> None:
    read_by_wnb = settings_wnb_reads()
    given = set()
    for service in compose()["services"].values():
        given |= {name for name in service.get("environment", {}) if name.startswith("WNB_")}
    for line in (DEPLOY / "wnb.env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            given.add(line.split("=", 1)[0])
    given |= set(re.findall(r"\b(WNB_[A-Z_]+)=", (DEPLOY / "Dockerfile").read_text()))
    assert given, "no settings found in deploy/"
    assert given <= read_by_wnb, f"set in deploy/ but never read: {sorted(given - read_by_wnb)}"


# ---- without Docker Hub (compose.local-images.yaml) and the check scripts ----


def test_local_images_override_swaps_only_the_images_pulled_from_docker_hub() -> None:
    override = yaml.safe_load((DEPLOY / "compose.local-images.yaml").read_text())["services"]
    pulled = {name for name, service in compose()["services"].items() if "build" not in service}
    assert set(override) == pulled == {"db", "lb"}
    for name, service in override.items():
        assert set(service) == {"image", "build"}, f"{name}: the override changes more than where the image comes from"
        assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file(), name


def test_stand_in_postgresql_reads_the_settings_compose_gives_the_official_image() -> None:
    entrypoint = (DEPLOY / "local-images" / "postgres-entrypoint.sh").read_text()
    for variable in compose()["services"]["db"]["environment"]:
        assert f"${{{variable}" in entrypoint, f"{variable} is set by compose.yaml but ignored by the stand-in"


@pytest.mark.parametrize("script", sorted(path.name for path in DEPLOY.rglob("*.sh")))
def test_deploy_scripts_parse_and_those_run_directly_are_executable(script: str) -> None:
    path = next(DEPLOY.rglob(script))
    checked = subprocess.run(["sh", "-n", str(path)], capture_output=True, text=True, timeout=30, check=False)
    assert checked.returncode == 0, checked.stderr
    if path.read_text().startswith("#!"):
        assert os.access(path, os.X_OK), f"{script} starts with #! but is not executable"


# ---- the systemd unit ----


def test_systemd_unit_reads_an_environment_file_and_runs_serve_as_its_own_user() -> None:
    service = unit()["Service"]
    assert service["EnvironmentFile"].startswith("/etc/wnb/")
    assert service["User"] not in ("root", "0")
    assert shlex.split(service["ExecStart"])[:2] == [INSTALLED_WNB, "serve"]
    assert shlex.split(service["ExecStartPre"]) == [INSTALLED_WNB, "db", "upgrade"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("CapabilityBoundingSet", ""),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
    ],
)
def test_systemd_unit_is_hardened(key: str, value: str) -> None:
    assert unit()["Service"][key] == value


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify checks that the programs exist: point the unit at this checkout's wnb instead of /opt/wnb.
    copy = tmp_path / "wnb.service"
    copy.write_text((DEPLOY / "wnb.service").read_text().replace(INSTALLED_WNB, str(WNB)))
    checked = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60, check=False
    )
    problems = [line for line in checked.stderr.splitlines() if "wnb.service" in line]
    assert checked.returncode == 0 and not problems, checked.stderr


# ---- the operations guide ----


# `wnb` as a command: at the start, after a space or in a path ending /bin/wnb; not the value of an option
# (`-u wnb`, `-g wnb`, `--now wnb`: the service's user, group or unit).
WNB_INVOCATION = re.compile(r"(?:^|(?<=\s)|(?<=/bin/))(?<!-[a-zA-Z] )(?<!--now )wnb((?:\s+[a-z][a-z-]*)+)")


def guide_commands() -> list[list[str]]:
    """Every `wnb …` invocation in the guide's code (blocks and inline), as its words."""
    text = (DEPLOY / "OPERATIONS.md").read_text()
    code = re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL) + re.findall(r"`([^`\n]+)`", text)
    found = []
    for snippet in code:
        for line in snippet.splitlines():
            for match in WNB_INVOCATION.finditer(line.split("#")[0]):
                found.append(match.group(1).split())
    return found


# Documented for the release that brings them; checked once their module is in this checkout.
COMING_WITH = {("db", "upgrade"): "wnb.store.schema"}


def test_operations_guide_names_only_wnb_commands_that_exist() -> None:
    root = typer.main.get_command(app)
    commands = [
        words
        for words in guide_commands()
        if tuple(words[:2]) not in COMING_WITH or importlib.util.find_spec(COMING_WITH[tuple(words[:2])]) is not None
    ]
    assert len(commands) >= 8
    for words in commands:
        command: Any = root
        for word in words:
            subcommands = getattr(command, "commands", None)  # a group; typer's own click has no click.Group
            if subcommands is None:
                break  # a command: the rest are its arguments
            assert word in subcommands, f"`wnb {' '.join(words)}` in OPERATIONS.md: no command {word!r}"
            command = subcommands[word]
        assert getattr(command, "commands", None) is None, f"`wnb {' '.join(words)}` names a group, not a command"
