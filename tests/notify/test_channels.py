"""The channel registry: every address has exactly one channel, and each channel's claim picks its own rows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text

from wnb.core.audit_chain import canonical
from wnb.notify.channels import Message
from wnb.notify.outbox import CLAIM_PATTERNS
from wnb.notify.registry import CHANNELS, channel_for

ADDRESSES = [
    "nurse@example.org",
    "https://hooks.example.org/wnb?token=x",
    "http://127.0.0.1:9000/hook",
    "lead",
    # The sharing channels (issue 18): each by its own prefix, never taken for an e-mail or a webhook.
    "secure-email:riverside.surgery@nhs.net",
    "fhir:https://fhir.riverside.example/Communication",
    "letter:WNB-T12-1",
]
MESSAGE = Message(
    "F12:red", "safeguarding-lead", "Red flag F12", "Open wnb to see F12.", datetime(2026, 3, 2, tzinfo=UTC)
)


@pytest.mark.parametrize("address", ADDRESSES)
def test_every_address_is_accepted_by_exactly_one_channel(address: str) -> None:
    assert [name for name, channel in CHANNELS.items() if channel.accepts(address)] == [channel_for(address).name]


def test_a_url_is_a_webhooks_and_any_other_address_an_emails() -> None:
    assert [channel_for(address).name for address in ADDRESSES] == [
        "email",
        "webhook",
        "webhook",
        "email",
        "secure-email",
        "fhir",
        "letter",
    ]


def test_an_email_carries_the_text_and_a_webhook_only_ids_and_codes() -> None:
    assert channel_for("nurse@example.org").body(MESSAGE) == MESSAGE.body
    assert channel_for("https://hooks.example.org/").body(MESSAGE) == canonical(
        {
            "notification": "F12:red",
            "role": "safeguarding-lead",
            "subject": "Red flag F12",
            "queued_at": MESSAGE.queued_at,
        }
    )


def test_each_channels_claim_picks_exactly_the_rows_it_accepts() -> None:
    engine = create_engine("sqlite://")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE outbox (recipient TEXT)"))
        for address in ADDRESSES:
            connection.execute(text("INSERT INTO outbox VALUES (:address)"), {"address": address})
        for channel in CHANNELS.values():
            claimed = connection.execute(
                text(f"SELECT recipient FROM outbox WHERE {channel.claims}"),
                CLAIM_PATTERNS,
            ).scalars()
            assert sorted(claimed) == sorted(address for address in ADDRESSES if channel.accepts(address))
