"""Contacts a machine can use (issue 18 part 1): who to tell about a child, and the directory of organisations.

A person's context names its contacts by role; a structured one says which organisation (and its ODS code),
which person, a secure e-mail address and a FHIR endpoint, each checked here. The free-text contacts of older
feeds (`{"gp_practice": "Y00001 Riverside Surgery"}`) still import and show, and are listed as needing
structure until a structured contact of the same role replaces them. A recipient is an organisation of the
directory, keyed by its ODS code; a structured contact that names only the code is completed from it when shown.
Pure: parsing, checking and completing values, no store and no network.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from wnb.core.errors import InvalidEvent

_ODS = re.compile(r"^[A-Z0-9]{3,6}$")
# A pragmatic check, not RFC 5322: one @, no spaces, a dotted domain whose last label is letters.
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
MAX_EMAIL = 254
MAX_URL = 2000


class ContactRole(StrEnum):
    """Who a contact is to the child: the roles the information-sharing tasks tell."""

    GP_PRACTICE = "gp-practice"
    SOCIAL_WORKER = "social-worker"
    LEAD_PROFESSIONAL = "lead-professional"
    HEALTH_VISITOR = "health-visitor"
    SCHOOL_NURSE = "school-nurse"


def ods_code(value: str) -> str:
    code = value.strip().upper()
    if not _ODS.match(code):
        raise ValueError(f"{value!r} is not an ODS code (3 to 6 letters or digits, e.g. Y00001)")
    return code


def _email(value: str) -> str:
    address = value.strip()
    if len(address) > MAX_EMAIL or not _EMAIL.match(address) or ".." in address:
        raise ValueError(f"{value!r} is not an e-mail address")
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}"


def _endpoint(value: str) -> str:
    url = value.strip()
    parts = urlsplit(url)
    if len(url) > MAX_URL or parts.scheme.lower() != "https" or not parts.hostname or " " in url:
        raise ValueError(f"{value!r} is not an https:// URL (a FHIR endpoint must be https)")
    if parts.username or parts.password:
        raise ValueError("an endpoint must not carry a user name or password")
    return url


OdsCode = Annotated[str, AfterValidator(ods_code)]
SecureEmail = Annotated[str, AfterValidator(_email)]
HttpsEndpoint = Annotated[str, AfterValidator(_endpoint)]
_Text = Annotated[str, Field(min_length=1, max_length=500)]


class Contact(BaseModel):
    """One structured contact of a person: a role, and enough to reach them (an organisation, a person or an
    address)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    role: ContactRole = Field(description="gp-practice, social-worker, lead-professional, health-visitor, school-nurse")
    organisation: _Text | None = Field(default=None, description="the organisation's name")
    ods_code: OdsCode | None = Field(default=None, description="the organisation's ODS code (3-6 letters or digits)")
    person: _Text | None = Field(default=None, description="the named person, when there is one")
    email: SecureEmail | None = Field(default=None, description="a secure e-mail address (e.g. nhs.net)")
    endpoint: HttpsEndpoint | None = Field(default=None, description="an https:// FHIR endpoint")

    @model_validator(mode="after")
    def _reachable(self) -> Contact:
        if not any((self.organisation, self.ods_code, self.person, self.email, self.endpoint)):
            raise ValueError("a contact needs an organisation, an ODS code, a person, an e-mail or an endpoint")
        return self


class Recipient(BaseModel):
    """An organisation of the recipient directory, keyed by its ODS code."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    ods_code: OdsCode
    name: _Text
    email: SecureEmail | None = None
    endpoint: HttpsEndpoint | None = None

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Recipient:
        """A directory row (an NDJSON record or a CSV row) checked; InvalidEvent naming the first bad field."""
        try:
            return cls.model_validate(dict(raw))
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "record"
            words = {"extra_forbidden": "unknown field", "missing": "required field is missing"}
            reason = words.get(first["type"], str(first["msg"]).removeprefix("Value error, "))
            raise InvalidEvent(field, reason) from None


def completed(contact: Contact, directory: Mapping[str, Recipient]) -> Contact:
    """The contact with what it leaves out (organisation, e-mail, endpoint) taken from its ODS code's entry."""
    entry = directory.get(contact.ods_code) if contact.ods_code else None
    if entry is None:
        return contact
    return contact.model_copy(
        update={
            "organisation": contact.organisation or entry.name,
            "email": contact.email or entry.email,
            "endpoint": contact.endpoint or entry.endpoint,
        }
    )


def role_of_key(key: str) -> ContactRole | None:
    """The role a free-text contact's key means (`gp_practice`, `GP practice`), or None when it names none."""
    name = re.sub(r"[\s_]+", "-", key.strip().lower())
    try:
        return ContactRole(name)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class FreeTextContact:
    """A contact given as text under a key: shown as it came, and needing structure."""

    key: str
    text: str
    role: ContactRole | None


def free_text_contacts(contacts: Mapping[str, Any], structured: tuple[Contact, ...]) -> list[FreeTextContact]:
    """The free-text contacts still needing structure: those whose role no structured contact covers."""
    covered = {contact.role for contact in structured}
    found = []
    for key, value in contacts.items():
        role = role_of_key(key)
        if role is not None and role in covered:
            continue
        text = value if isinstance(value, str) else ", ".join(f"{k}: {v}" for k, v in _items(value))
        found.append(FreeTextContact(key, text, role))
    return found


def _items(value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, Mapping):
        return [(str(k), v) for k, v in value.items()]
    if isinstance(value, list):
        return [(str(index), item) for index, item in enumerate(value)]
    return [("value", value)]
