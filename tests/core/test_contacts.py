"""Contacts a machine can use (issue 18 part 1): structured contacts and directory entries are checked, free-text
contacts stay and are listed as needing structure, and a contact naming only an ODS code is completed."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from wnb.core.contacts import Contact, ContactRole, Recipient, completed, free_text_contacts, role_of_key
from wnb.core.domain import PersonContext
from wnb.core.errors import InvalidEvent

CHILD = "9990000018"
RIVERSIDE = Recipient(
    ods_code="Y00001",
    name="Riverside Surgery",
    email="riverside.surgery@nhs.net",
    endpoint="https://fhir.riverside.example/R4",
)


def test_a_structured_contact_keeps_its_role_organisation_code_person_email_and_endpoint() -> None:
    contact = Contact.model_validate(
        {
            "role": "social-worker",
            "organisation": "Northshire Children's Services",
            "ods_code": "b86001",
            "person": "A. Duty",
            "email": "Duty.Team@Northshire.GOV.UK",
            "endpoint": "https://fhir.northshire.example/R4",
        }
    )
    assert contact.role is ContactRole.SOCIAL_WORKER and contact.ods_code == "B86001"
    assert contact.email == "Duty.Team@northshire.gov.uk"  # the domain is case-blind, the local part is not


@pytest.mark.parametrize("code", ["AB", "ABCDEFG", "Y0-001", "Y 001", ""])
def test_an_ods_code_is_three_to_six_letters_or_digits(code: str) -> None:
    with pytest.raises(ValidationError, match="ODS code"):
        Contact(role=ContactRole.GP_PRACTICE, ods_code=code)


@pytest.mark.parametrize("address", ["no-at-sign", "a@b", "two@@nhs.net", "sp ace@nhs.net", "a@nhs..net", "a@.net"])
def test_an_email_address_that_is_not_one_is_refused(address: str) -> None:
    with pytest.raises(ValidationError, match="e-mail"):
        Contact(role=ContactRole.GP_PRACTICE, email=address)


@pytest.mark.parametrize(
    "url", ["http://fhir.example/R4", "ftp://fhir.example", "https://", "fhir.example/R4", "https://u:p@fhir.example"]
)
def test_an_endpoint_must_be_https_without_credentials(url: str) -> None:
    with pytest.raises(ValidationError, match="https|password"):
        Contact(role=ContactRole.GP_PRACTICE, endpoint=url)


def test_a_contact_with_a_role_alone_reaches_nobody_and_is_refused() -> None:
    with pytest.raises(ValidationError, match="needs an organisation"):
        Contact(role=ContactRole.HEALTH_VISITOR)


def test_an_unknown_role_is_refused_naming_the_field() -> None:
    raw: dict[str, Any] = {"nhs_number": CHILD, "structured_contacts": [{"role": "neighbour", "person": "X"}]}
    with pytest.raises(InvalidEvent) as refused:
        PersonContext.parse(raw)
    assert refused.value.field == "structured_contacts.0.role"


def test_a_context_takes_structured_and_free_text_contacts_together() -> None:
    context = PersonContext.parse(
        {
            "nhs_number": CHILD,
            "contacts": {"gp_practice": "Y00001 Riverside Surgery", "social_worker": "Duty team"},
            "structured_contacts": [{"role": "gp-practice", "ods_code": "Y00001"}],
        }
    )
    assert context.contacts["gp_practice"] == "Y00001 Riverside Surgery"
    assert [contact.role for contact in context.structured_contacts] == [ContactRole.GP_PRACTICE]


def test_a_free_text_contact_needs_structure_until_a_structured_one_gives_its_role() -> None:
    free = {"gp_practice": "Y00001 Riverside Surgery", "social_worker": "Duty team", "aunt": {"name": "Jo"}}
    structured = (Contact(role=ContactRole.GP_PRACTICE, ods_code="Y00001"),)
    needing = free_text_contacts(free, structured)
    assert [(item.key, item.role, item.text) for item in needing] == [
        ("social_worker", ContactRole.SOCIAL_WORKER, "Duty team"),
        ("aunt", None, "name: Jo"),
    ]
    assert len(free_text_contacts(free, ())) == 3


def test_a_free_text_key_names_its_role_whatever_its_spelling() -> None:
    assert role_of_key("gp_practice") == role_of_key("GP practice") == ContactRole.GP_PRACTICE
    assert role_of_key("school-nurse") == ContactRole.SCHOOL_NURSE and role_of_key("aunt") is None


def test_a_contact_naming_only_an_ods_code_is_completed_from_the_directory() -> None:
    contact = Contact(role=ContactRole.GP_PRACTICE, ods_code="Y00001")
    filled = completed(contact, {"Y00001": RIVERSIDE})
    assert (filled.organisation, filled.email, filled.endpoint) == (
        "Riverside Surgery",
        "riverside.surgery@nhs.net",
        "https://fhir.riverside.example/R4",
    )


def test_what_a_contact_gives_itself_wins_over_the_directory_and_an_unknown_code_stays_as_it_is() -> None:
    own = Contact(role=ContactRole.GP_PRACTICE, ods_code="Y00001", email="safeguarding.riverside@nhs.net")
    assert completed(own, {"Y00001": RIVERSIDE}).email == "safeguarding.riverside@nhs.net"
    unknown = Contact(role=ContactRole.GP_PRACTICE, ods_code="Z99999")
    assert completed(unknown, {"Y00001": RIVERSIDE}) == unknown


def test_a_directory_row_is_checked_and_a_bad_one_names_its_field() -> None:
    assert Recipient.parse({"ods_code": "y00001", "name": "Riverside Surgery"}).ods_code == "Y00001"
    for raw, field in (
        ({"ods_code": "Y00001"}, "name"),
        ({"ods_code": "Y00001", "name": "R", "endpoint": "http://x.example"}, "endpoint"),
        ({"ods_code": "Y00001", "name": "R", "fax": "0100"}, "fax"),
    ):
        with pytest.raises(InvalidEvent) as refused:
            Recipient.parse(raw)
        assert refused.value.field == field
