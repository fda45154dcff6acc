"""Settings from WNB_* variables: parsed once with clear errors; production refuses default secrets and keeps
/docs closed unless asked."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.factories import only_given, run_wnb
from tests.server import serving
from wnb.api import create_app
from wnb.core.errors import WnbError
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.quick_settings import DEFAULT_DATABASE_URL, development_database_url, log_level
from wnb.service import Service
from wnb.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
STRONG = "s" * 40


def bare(tmp_path: Path, **env: str) -> dict[str, str | None]:
    """The environment of a command that sees only these WNB_* variables and a database in tmp_path."""
    database = {"WNB_DATABASE_URL": f"sqlite:///{tmp_path / 'wnb.db'}", "WNB_RULES_DIR": str(ROOT / "rules/default")}
    return only_given(**database, **env)


def test_settings_are_read_from_wnb_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WNB_FEED_WINDOWS", "pas=24h, community=3d")
    monkeypatch.setenv("WNB_NOTIFY", "safeguarding-nurse=sg@trust.example")
    monkeypatch.setenv("WNB_SMTP_PORT", "2525")
    settings = load_settings()
    assert settings.feed_windows == {"pas": timedelta(hours=24), "community": timedelta(days=3)}
    assert settings.notify == {"safeguarding-nurse": ("sg@trust.example",)}
    assert settings.smtp_port == 2525


def test_the_sharing_settings_are_read_from_wnb_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().sharing().secure_email_domains == ()  # none by default: e-mail sharing is off
    monkeypatch.setenv("WNB_SECURE_EMAIL_DOMAINS", "nhs.net, @Gov.UK")
    monkeypatch.setenv("WNB_TRUST_CONTACT", "Safeguarding team, 01234 567890")
    monkeypatch.setenv("WNB_OUTBOX_RETENTION_DAYS", "14")
    monkeypatch.setenv("WNB_PUBLIC_URL", " https://wnb.trust.example/ ")
    monkeypatch.setenv("WNB_ACK_LINK_DAYS", "7")
    settings = load_settings()
    assert (settings.sharing().public_url, settings.sharing().link_days) == ("https://wnb.trust.example", 7)
    assert settings.sharing().secure_email_domains == ("nhs.net", "gov.uk")
    assert settings.sharing().contact_at_trust("booking-team") == "Safeguarding team, 01234 567890"
    assert settings.outbox_retention_days == 14


def test_sign_in_and_mllp_settings_are_read_from_wnb_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WNB_MLLP_PEERS", "pas=10.0.0.5, 10.0.0.6; lab=10.1.1.0/24")
    monkeypatch.setenv("WNB_SIGNIN_LOCK_FAILURES", "6")
    monkeypatch.setenv("WNB_SIGNIN_LOCK_MINUTES", "30")
    monkeypatch.setenv("WNB_MLLP_IDLE_MINUTES", "2")
    settings = load_settings()
    assert settings.mllp_peers == {"pas": ("10.0.0.5/32", "10.0.0.6/32"), "lab": ("10.1.1.0/24",)}
    assert (settings.signin_lock_failures, settings.signin_lock_minutes) == (6, 30)
    assert (settings.mllp_idle_minutes, settings.mllp_max_connections) == (2, 50)


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("WNB_SMTP_PORT", "twenty-five", "WNB_SMTP_PORT"),
        ("WNB_FEED_WINDOWS", "pas=24x", "24x"),
        ("WNB_NOTIFY", "nurse=sg@trust.example", "nurse"),
        ("WNB_MODE", "staging", "WNB_MODE"),
        ("WNB_WEBHOOK_URL", "ftp://hooks", "WNB_WEBHOOK_URL"),
        ("WNB_MLLP_PEERS", "pas=10.0.0.300", "10.0.0.300"),
        ("WNB_MLLP_PEERS", "pas=10.0.0.5;pas=10.0.0.6", "given twice"),
        ("WNB_MLLP_PEERS", "pas", "source=address"),
        ("WNB_SIGNIN_LOCK_FAILURES", "0", "WNB_SIGNIN_LOCK_FAILURES"),
        ("WNB_MLLP_MAX_CONNECTIONS", "0", "WNB_MLLP_MAX_CONNECTIONS"),
        ("WNB_SECURE_EMAIL_DOMAINS", "nhs", "not an e-mail domain"),
        ("WNB_PUBLIC_URL", "wnb.trust.example", "not an http(s) address"),
        ("WNB_ACK_LINK_DAYS", "0", "WNB_ACK_LINK_DAYS"),
    ],
)
def test_a_bad_setting_is_an_error_naming_the_variable_and_value(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(WnbError, match=variable) as raised:
        load_settings()
    assert named in str(raised.value)


def test_production_with_every_secret_set_has_no_problem() -> None:
    settings = Settings(mode="production", session_secret=STRONG, webhook_secret=STRONG)
    assert settings.production_problems() == []


def test_production_wants_an_https_public_url_since_the_acknowledgement_links_carry_it() -> None:
    settings = Settings(
        mode="production", session_secret=STRONG, webhook_secret=STRONG, public_url="http://wnb.trust.example"
    )
    assert settings.production_problems() == [
        "WNB_PUBLIC_URL must be https:// in production: the acknowledgement links carry it"
    ]


def test_production_with_a_short_secret_is_a_problem_naming_the_variable() -> None:
    settings = Settings(mode="production", session_secret="short", webhook_secret=STRONG)
    assert settings.production_problems() == ["WNB_SESSION_SECRET is shorter than 32 characters"]


def test_serve_refuses_to_start_in_production_with_a_default_secret(tmp_path: Path) -> None:
    env = bare(tmp_path, WNB_MODE="production", WNB_WEBHOOK_SECRET=STRONG)
    result = run_wnb(tmp_path, "serve", "--port", "0", env=env)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("wnb: error:") and "WNB_SESSION_SECRET" in line
    assert not (tmp_path / "wnb.db").exists()  # refused before anything was created


def test_docs_are_closed_in_production_unless_asked_for(tmp_path: Path, ruleset: Ruleset) -> None:
    service = Service(open_database(f"sqlite:///{tmp_path / 'wnb.db'}"), ruleset)
    production = {"mode": "production", "session_secret": STRONG, "webhook_secret": STRONG}
    with serving(create_app(service, settings=Settings(**production))) as url:
        assert httpx.get(f"{url}/docs").status_code == 404
        assert httpx.get(f"{url}/openapi.json").status_code == 404
    with serving(create_app(service, settings=Settings(**production, docs=True))) as url:
        assert httpx.get(f"{url}/openapi.json").status_code == 200
    service.db.dispose()


def test_the_webhook_receives_the_notifications_of_every_role() -> None:
    settings = Settings(notify={"named-nurse": ("nn@trust.example",)}, webhook_url="https://hooks.example/wnb")
    targets = settings.notify_targets()
    assert targets["named-nurse"] == ("nn@trust.example", "https://hooks.example/wnb")
    assert targets["booking-team"] == ("https://hooks.example/wnb",)


def test_a_secret_may_come_from_a_file_in_the_secrets_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "WNB_SESSION_SECRET").write_text(STRONG)
    monkeypatch.setenv("WNB_SECRETS_DIR", str(tmp_path))
    assert load_settings().session_secret.get_secret_value() == STRONG


def test_any_command_refuses_a_bad_setting_with_one_line_naming_it(tmp_path: Path) -> None:
    result = run_wnb(tmp_path, "flags", env=bare(tmp_path, WNB_LOG_LEVEL="LOUD"))
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("wnb: error: WNB_LOG_LEVEL") and "LOUD" in line


def only(monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]) -> None:
    """These WNB_* variables and the suite's audit key, no other (such as WNB_TEST_POSTGRES)."""
    for name in list(os.environ):
        if name.upper().startswith("WNB_") and name != "WNB_AUDIT_KEY":
            monkeypatch.delenv(name)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize(
    "variables",
    [
        {},
        {"WNB_LOG_LEVEL": "info", "WNB_DATABASE_URL": "sqlite:////tmp/elsewhere.db", "WNB_RULES_DIR": "rules/default"},
        {"wnb_log_level": "debug", "WNB_MODE": "development"},
        {"WNB_AUDIT_KEY": ""},
    ],
)
def test_the_quick_settings_are_those_the_settings_load(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]
) -> None:
    """wnb.quick_settings reads the log level and database without pydantic-settings (issue 17): the same values."""
    only(monkeypatch, variables)
    settings = load_settings()

    assert log_level() == (settings.log_level or "WARNING")
    assert development_database_url() == settings.database_url
    assert Settings.model_fields["database_url"].default == DEFAULT_DATABASE_URL


@pytest.mark.parametrize(
    "variables",
    [
        {"WNB_LOG_LEVEL": "LOUD"},  # Settings names the problem
        {"WNB_MODE": "Development"},
        {"WNB_AUDIT_KEY": "k1:short"},
        {"WNB_SMTP_PORT": "not-a-port"},  # a variable read only by Settings: every command checks it
        {"WNB_SECRETS_DIR": "/nowhere"},  # any setting may come from its files
        {"WNB_LOG_LEVEL": "INFO", "wnb_log_level": "DEBUG"},
    ],
)
def test_the_quick_settings_leave_to_the_settings_what_they_cannot_be_sure_of(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]
) -> None:
    only(monkeypatch, variables)

    assert log_level() is None and development_database_url() is None


def test_the_quick_database_is_only_that_of_development_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    only(monkeypatch, {"WNB_MODE": "production"})  # opened by wnb.database, which needs the audit key

    assert development_database_url() is None and log_level() == "WARNING"
