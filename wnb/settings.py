"""Every setting of wnb, read once from `WNB_*` environment variables (pydantic-settings), checked on load.

The command line and `wnb serve` build a `Settings`; nothing else in wnb reads the environment but
wnb.quick_settings, the few a quick command reads when every WNB_* variable is plainly valid. Secrets may
also come from files: `WNB_SECRETS_DIR` names a folder holding one file per variable (e.g. `WNB_SESSION_SECRET`).
In production mode the service refuses to start while a secret keeps its development default.
"""

from __future__ import annotations

import ipaddress
import os
import re
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from wnb.core.domain import Role
from wnb.core.errors import WnbError
from wnb.core.sharing import SharingConfig
from wnb.quick_settings import MIN_SECRET_LENGTH as MIN_SECRET_LENGTH
from wnb.quick_settings import parse_audit_keys as parse_audit_keys

DEFAULT_SESSION_SECRET = "development-session-secret-change-me"
DEFAULT_WEBHOOK_SECRET = "development-webhook-secret-change-me"
CONTEXT_STALE_DAYS = 90  # a person's safeguarding context not refreshed for longer is listed as stale
CONTEXT_MATCH_MIN = 0.8  # the share of events with context below which /health/ready warns
AUDIT_KEY_MISSING = (
    "WNB_AUDIT_KEY is not set: production writes and verifies the audit log only with its key; set it to "
    "ID:SECRET (make one with `wnb audit new-key`) or put it in the file WNB_AUDIT_KEY of WNB_SECRETS_DIR"
)
_BASE64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
_WINDOW = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class Mode(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


def parse_window(text: str) -> timedelta:
    """`90s`, `15m`, `24h` or `3d` → a timedelta."""
    match = _WINDOW.match(text.strip())
    if match is None:
        raise ValueError(f"{text.strip()!r} is not a window like 15m, 24h or 3d")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


def parse_feed_windows(text: str) -> dict[str, timedelta]:
    """`pas=24h,community=3d` → {source: window}; each source at most once."""
    windows: dict[str, timedelta] = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        source, _, window = part.partition("=")
        source = source.strip()
        if not source or not window:
            raise ValueError(f"entry {part!r} is not source=window (e.g. pas=24h)")
        if source in windows:
            raise ValueError(f"source {source!r} is given twice")
        windows[source] = parse_window(window)
    return windows


def parse_mllp_peers(text: str) -> dict[str, tuple[str, ...]]:
    """`pas=10.0.0.5,10.0.0.6;lab=10.1.0.0/24` → {source (MSH-4): addresses or networks}; each source once."""
    peers: dict[str, tuple[str, ...]] = {}
    for part in filter(None, (piece.strip() for piece in text.split(";"))):
        source, _, addresses = part.partition("=")
        source = source.strip()
        if not source or not addresses.strip():
            raise ValueError(f"entry {part!r} is not source=address,address (e.g. pas=10.0.0.5,10.0.0.6)")
        if source in peers:
            raise ValueError(f"source {source!r} is given twice")
        found = []
        for address in filter(None, (piece.strip() for piece in addresses.split(","))):
            try:
                found.append(str(ipaddress.ip_network(address, strict=False)))
            except ValueError:
                raise ValueError(f"{address!r} (for {source}) is not an IP address or network") from None
        peers[source] = tuple(found)
    return peers


def parse_notify(text: str) -> dict[str, tuple[str, ...]]:
    """`role=a@x,role=b@y` → {role: addresses}; every role must be one of wnb's roles."""
    found: dict[str, list[str]] = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        role, _, address = part.partition("=")
        role, address = role.strip(), address.strip()
        if not address or "@" not in address:
            raise ValueError(f"entry {part!r} is not role=address")
        if role not in {r.value for r in Role}:
            raise ValueError(f"entry {part!r}: {role!r} is not a role")
        found.setdefault(role, []).append(address)
    return {role: tuple(addresses) for role, addresses in found.items()}


class Settings(BaseSettings):
    """wnb's settings; each field is the environment variable `WNB_<FIELD NAME>`."""

    model_config = SettingsConfigDict(env_prefix="WNB_", extra="ignore", case_sensitive=False)

    mode: Mode = Field(Mode.DEVELOPMENT, description="development or production (production refuses default secrets)")
    database_url: str = Field("sqlite:///wnb.db", description="SQLAlchemy URL; SQLite runs in WAL mode")
    rules_dir: Path | None = Field(None, description="the ruleset directory in force (default rules/default)")
    log_level: str | None = Field(None, description="WARNING for commands, INFO for wnb serve")
    host: str = Field("127.0.0.1", description="address wnb serve listens on")
    port: int = Field(8000, ge=0, le=65535, description="TCP port of wnb serve")
    forwarded_allow_ips: str = Field(
        "127.0.0.1", description="proxies (addresses or networks, comma-separated) whose X-Forwarded-For is believed"
    )
    sweep_minutes: float = Field(5, gt=0, description="minutes between sweeps (WNB-14 and escalations)")
    inbox: Path | None = Field(None, description="a folder wnb serve polls every minute for feed files")
    notify: Annotated[dict[str, tuple[str, ...]], NoDecode] = Field(
        default_factory=dict, description="e-mail addresses by role: role=address,role=address"
    )
    smtp_host: str | None = Field(None, description="SMTP server; none: no e-mail is delivered")
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_from: str = "wnb@localhost"
    webhook_url: str | None = Field(None, description="an https:// (or http://) URL sent every notification")
    webhook_secret: SecretStr = SecretStr(DEFAULT_WEBHOOK_SECRET)
    # Sharing information with the people outside (issue 18): secure e-mail, FHIR Communications, letters.
    secure_email_domains: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="the e-mail domains counted as secure for a child's information: nhs.net,gov.uk (none: off)"
    )
    sharing_ca_file: Path | None = Field(
        None, description="a CA bundle verifying the SMTP server (STARTTLS) and FHIR endpoints instead of the system's"
    )
    trust_contact: str | None = Field(
        None, description="whom a recipient contacts at the trust, in every message (none: the task's owner team)"
    )
    public_url: str | None = Field(
        None,
        description="wnb's address as recipients outside reach it, e.g. https://wnb.trust.nhs.uk: messages then "
        "carry an acknowledgement link (none: no link; recipients acknowledge through the API)",
    )
    ack_link_days: int = Field(30, ge=1, le=365, description="days an acknowledgement link stays valid")
    outbox_retention_days: float = Field(
        30, gt=0, description="days a message's text stays in the outbox once it will not be sent again"
    )
    session_secret: SecretStr = SecretStr(DEFAULT_SESSION_SECRET)
    feed_windows: Annotated[dict[str, timedelta], NoDecode] = Field(
        default_factory=dict, description="how long each source may stay silent: pas=24h,community=3d"
    )
    docs: bool | None = Field(None, description="serve /docs and /openapi.json (default: not in production)")
    signin_lock_failures: int = Field(
        10, ge=1, description="failed sign-ins of one account from one address that lock it from that address"
    )
    signin_lock_minutes: float = Field(15, gt=0, description="how long such a lock lasts; it then opens by itself")
    mllp_peers: Annotated[dict[str, tuple[str, ...]], NoDecode] = Field(
        default_factory=dict,
        description="the addresses each HL7 source (MSH-4) may send from: pas=10.0.0.5,10.0.0.6;lab=10.1.1.1",
    )
    mllp_idle_minutes: float = Field(10, gt=0, description="an MLLP connection silent this long is closed")
    mllp_max_connections: int = Field(50, ge=1, description="MLLP connections open at once; more are closed")
    audit_key: SecretStr | None = Field(
        None, description="keys authenticating audit records: ID:SECRET[,ID:SECRET…], the first writes new records"
    )
    audit_signing_key: SecretStr | None = Field(
        None, description="the Ed25519 key signing audit checkpoints: PEM (`wnb audit keygen`), or its body on a line"
    )
    audit_checkpoint_dir: Path | None = Field(
        None, description="the folder audit checkpoints are written to, shipped to write-once storage"
    )
    audit_checkpoint_minutes: float = Field(
        60, ge=0, description="minutes between the checkpoints wnb serve writes (0: none; needs the two above)"
    )
    context_stale_days: int = Field(
        CONTEXT_STALE_DAYS, ge=1, description="days after which a person's safeguarding context counts as not refreshed"
    )
    context_match_min: float = Field(
        CONTEXT_MATCH_MIN,
        ge=0,
        le=1,
        description="the share of judged events whose person has context below which /health/ready warns and an "
        "admin task opens (0: never)",
    )
    propose_tests: bool = Field(
        True,
        description="run the named tests of the hazard log's system controls at `wnb rules propose` when wnb's own "
        "test suite is installed (a checkout); false: they are recorded as not run",
    )

    @field_validator("notify", mode="before")
    @classmethod
    def _notify(cls, value: Any) -> Any:
        return parse_notify(value) if isinstance(value, str) else value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value.strip()):
            raise ValueError(f"{value!r} is not an http(s) address such as https://wnb.trust.nhs.uk")
        return value.strip() if value else None

    @field_validator("secure_email_domains", mode="before")
    @classmethod
    def _secure_email_domains(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        domains = tuple(part.strip().lower().lstrip("@") for part in value.split(",") if part.strip())
        for domain in domains:
            if "." not in domain or not re.fullmatch(r"[a-z0-9.-]+", domain):
                raise ValueError(f"{domain!r} is not an e-mail domain (e.g. nhs.net)")
        return domains

    @field_validator("mllp_peers", mode="before")
    @classmethod
    def _mllp_peers(cls, value: Any) -> Any:
        return parse_mllp_peers(value) if isinstance(value, str) else value

    @field_validator("feed_windows", mode="before")
    @classmethod
    def _feed_windows(cls, value: Any) -> Any:
        return parse_feed_windows(value) if isinstance(value, str) else value

    @field_validator("audit_key")
    @classmethod
    def _audit_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        parse_audit_keys(value.get_secret_value())
        return value

    @field_validator("audit_signing_key")
    @classmethod
    def _audit_signing_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        text = value.get_secret_value()
        if "BEGIN PRIVATE KEY" not in text and not _BASE64.match("".join(text.split())):
            raise ValueError("is neither a PEM private key nor its body on one line (make one: `wnb audit keygen`)")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"{value!r} is not DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return value.upper()

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value or None

    @property
    def is_production(self) -> bool:
        return self.mode is Mode.PRODUCTION

    @property
    def docs_open(self) -> bool:
        """Whether /docs and /openapi.json are served: yes in development, only when asked for in production."""
        return self.docs if self.docs is not None else not self.is_production

    def audit_keys(self) -> dict[str, str]:
        """The audit keys by id (empty when WNB_AUDIT_KEY is not set), the first the one that writes."""
        return parse_audit_keys(self.audit_key.get_secret_value()) if self.audit_key else {}

    def sharing(self) -> SharingConfig:
        """What sharing information with the people outside may do (issue 18): the secure domains, the contact."""
        return SharingConfig(
            self.secure_email_domains,
            self.trust_contact,
            self.public_url.rstrip("/") if self.public_url else None,
            self.session_secret.get_secret_value(),
            self.ack_link_days,
        )

    def notify_targets(self) -> dict[str, tuple[str, ...]]:
        """Where each role's notifications go: its e-mail addresses, and the webhook (for every role) if set."""
        if not self.webhook_url:
            return dict(self.notify)
        return {role.value: (*self.notify.get(role.value, ()), self.webhook_url) for role in Role}

    def production_problems(self) -> list[str]:
        """Why this configuration must not run in production (empty when it may, or in development)."""
        if not self.is_production:
            return []
        problems = []
        for name, default in (("session_secret", DEFAULT_SESSION_SECRET), ("webhook_secret", DEFAULT_WEBHOOK_SECRET)):
            secret = getattr(self, name).get_secret_value()
            variable = f"WNB_{name.upper()}"
            if secret == default:
                problems.append(f"{variable} has its development default: set it to a random secret")
            elif len(secret) < MIN_SECRET_LENGTH:
                problems.append(f"{variable} is shorter than {MIN_SECRET_LENGTH} characters")
        if self.audit_key is None:
            problems.append(AUDIT_KEY_MISSING)
        if self.public_url and self.public_url.startswith("http://"):
            problems.append("WNB_PUBLIC_URL must be https:// in production: the acknowledgement links carry it")
        if self.webhook_url and self.webhook_url.startswith("http://"):
            problems.append("WNB_WEBHOOK_URL must be https:// in production")
        return problems


def refuse_unsafe_production(settings: Settings) -> None:
    """Raise one clear error (naming the variable to set) when production mode is not safe to start."""
    if problems := settings.production_problems():
        raise WnbError(f"refusing to start in production mode: {problems[0]}")


def load_settings(**overrides: Any) -> Settings:
    """The settings from the environment (and `WNB_SECRETS_DIR`), or one clear error naming the variable."""
    secrets_dir = os.environ.get("WNB_SECRETS_DIR")
    if secrets_dir and not Path(secrets_dir).is_dir():
        raise WnbError(f"WNB_SECRETS_DIR {secrets_dir!r} is not a folder")
    try:
        return Settings(_secrets_dir=secrets_dir or None, **overrides)  # type: ignore[call-arg]  # init-only option
    except ValidationError as error:
        first = error.errors()[0]
        name = f"WNB_{str(first['loc'][0]).upper()}" if first["loc"] else "WNB_*"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise WnbError(f"{name}: {message}") from None
