"""Webhook delivery through the outbox, against a real HTTP server on loopback: signed with HMAC-SHA256, ids
only, retried on 5xx, 429 and connection errors, stopped on other 4xx, never posted twice after a restart."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FixedClock
from tests.notify.test_notify import MISSED, PLAN_CHILD  # the same child on a plan, not brought
from tests.server import free_port, serving, wait_for
from wnb import metrics
from wnb.api import create_app
from wnb.core.items import RawItem
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.notify import deliver, mark_uncertain_after_restart, record_backlog, webhook
from wnb.notify.webhook import WebhookSettings
from wnb.service import Service
from wnb.settings import Settings
from wnb.store.db import writing

SECRET = "a-webhook-secret-for-tests-only-0123456789"
NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)


class Receiver:
    """A loopback HTTP server that records each POST and answers the queued status codes first, then 204."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.replies: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.replies.pop(0) if receiver.replies else 204
                if status < 300:
                    receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/wnb"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.close()


def red_flag_service(tmp_path: Path, ruleset: Ruleset, url: str, email: bool = False) -> Service:
    """A service whose one red flag (child on a plan not brought) is queued for the webhook at `url`."""
    notify = {"safeguarding-nurse": ("sg@trust.example",)} if email else {}
    targets = Settings(webhook_url=url, notify=notify).notify_targets()
    service = Service(open_database(f"sqlite:///{tmp_path / 'wnb.db'}"), ruleset, FixedClock(NOW), notify=targets)
    service.import_context([RawItem(1, "", dict(PLAN_CHILD))], origin="test")
    service.ingest_one(RawItem(1, "", dict(MISSED)), origin="test")
    return service


def outbox(service: Service) -> list[tuple[str, str, int, str | None]]:
    with service.db.connect() as connection:
        query = "SELECT recipient, status, attempts, last_error FROM outbox ORDER BY id"
        return [tuple(row) for row in connection.exec_driver_sql(query)]  # type: ignore[misc]


HOOK = WebhookSettings(SECRET, timeout=5)


def test_a_red_flag_is_posted_once_signed_with_the_webhook_secret(
    tmp_path: Path, ruleset: Ruleset, receiver: Receiver
) -> None:
    service = red_flag_service(tmp_path, ruleset, receiver.url)
    assert deliver(service.db, None, NOW, HOOK)["sent"] == 1
    assert deliver(service.db, None, NOW, HOOK)["sent"] == 0
    ((headers, body),) = receiver.requests
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-wnb-signature"], expected)
    assert headers["x-wnb-delivery"].startswith("flag:")


def test_the_webhook_body_carries_ids_and_codes_only(tmp_path: Path, ruleset: Ruleset, receiver: Receiver) -> None:
    service = red_flag_service(tmp_path, ruleset, receiver.url)
    deliver(service.db, None, NOW, HOOK)
    ((_, body),) = receiver.requests
    document = json.loads(body)
    assert set(document) == {"notification", "role", "subject", "queued_at"}
    assert document["role"] == "safeguarding-nurse" and document["notification"].endswith(":raised")
    assert b"9990000018" not in body and b"2019-05-01" not in body


@pytest.mark.parametrize("status", [503, 500, 429])
def test_a_webhook_answering_a_server_error_or_too_many_requests_is_retried_after_a_backoff(
    tmp_path: Path, ruleset: Ruleset, receiver: Receiver, status: int
) -> None:
    service = red_flag_service(tmp_path, ruleset, receiver.url)
    receiver.replies = [status]
    assert deliver(service.db, None, NOW, HOOK)["retried"] == 1
    assert deliver(service.db, None, NOW, HOOK)["sent"] == 0  # not due again yet
    assert deliver(service.db, None, NOW + timedelta(minutes=3), HOOK)["sent"] == 1
    assert len(receiver.requests) == 1 and outbox(service)[0][1:3] == ("sent", 2)


def test_a_webhook_that_refuses_the_connection_is_retried(tmp_path: Path, ruleset: Ruleset) -> None:
    service = red_flag_service(tmp_path, ruleset, f"http://127.0.0.1:{free_port()}/nobody-listens")
    assert deliver(service.db, None, NOW, HOOK)["retried"] == 1
    (_, status, attempts, error) = outbox(service)[0]
    assert (status, attempts) == ("pending", 1) and error


@pytest.mark.parametrize("status", [400, 404, 410])
def test_a_webhook_answering_a_client_error_stops_and_records_it(
    tmp_path: Path, ruleset: Ruleset, receiver: Receiver, status: int
) -> None:
    service = red_flag_service(tmp_path, ruleset, receiver.url)
    receiver.replies = [status]
    assert deliver(service.db, None, NOW, HOOK)["failed"] == 1
    assert deliver(service.db, None, NOW + timedelta(days=1), HOOK)["sent"] == 0
    assert outbox(service)[0][1:] == ("failed", 1, f"HTTP {status}")


def test_a_webhook_row_interrupted_while_sending_is_never_posted_after_a_restart(
    tmp_path: Path, ruleset: Ruleset, receiver: Receiver
) -> None:
    service = red_flag_service(tmp_path, ruleset, receiver.url)
    with writing(service.db) as connection:
        connection.exec_driver_sql("UPDATE outbox SET status = 'sending'")  # the process died mid-post
    assert mark_uncertain_after_restart(service.db) == 1
    assert deliver(service.db, None, NOW, HOOK)["sent"] == 0 and receiver.requests == []


def test_without_smtp_only_webhook_rows_are_delivered_and_e_mail_waits(
    tmp_path: Path, ruleset: Ruleset, receiver: Receiver
) -> None:
    service = red_flag_service(tmp_path, ruleset, receiver.url, email=True)
    assert deliver(service.db, None, NOW, HOOK)["sent"] == 1
    assert sorted(status for _, status, _, _ in outbox(service)) == ["pending", "sent"]


def test_the_outbox_backlog_gauge_counts_rows_not_yet_sent(
    tmp_path: Path, ruleset: Ruleset, receiver: Receiver
) -> None:
    service = red_flag_service(tmp_path, ruleset, receiver.url, email=True)
    receiver.replies = [400]
    deliver(service.db, None, NOW, HOOK)  # the webhook row fails; the e-mail row waits for SMTP
    assert record_backlog(service.db) == {"pending": 1, "sending": 0, "uncertain": 0, "failed": 1}
    assert metrics.OUTBOX_BACKLOG.labels(status="failed")._value.get() == 1
    assert metrics.OUTBOX_BACKLOG.labels(status="pending")._value.get() == 1


def test_the_running_service_posts_queued_notifications_to_the_webhook(
    tmp_path: Path, ruleset: Ruleset, receiver: Receiver
) -> None:
    service = red_flag_service(tmp_path, ruleset, receiver.url)
    settings = Settings(webhook_url=receiver.url, webhook_secret=SECRET)
    with serving(create_app(service, sweep_minutes=60, settings=settings)):
        wait_for(lambda: receiver.requests)
        # The row is marked sent after the receiver answers, so wait for that too rather than race it.
        wait_for(lambda: [status for _, status, _, _ in outbox(service)] == ["sent"])
    assert receiver.requests


def test_a_crash_while_posting_leaves_only_that_row_uncertain_and_the_rest_pending(
    tmp_path: Path, ruleset: Ruleset, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = red_flag_service(tmp_path, ruleset, receiver.url)
    service.sweep(datetime(2026, 3, 10, 9, tzinfo=UTC))  # escalations: several more rows for the webhook
    assert len(outbox(service)) > 2

    def die(*args: Any) -> None:
        raise SystemExit("the process died mid-post")  # not a delivery error: nothing in deliver catches it

    monkeypatch.setattr(webhook, "post", die)
    with pytest.raises(SystemExit):
        deliver(service.db, None, NOW, HOOK)
    monkeypatch.undo()
    assert mark_uncertain_after_restart(service.db) == 1
    statuses = [status for _, status, _, _ in outbox(service)]
    assert statuses.count("uncertain") == 1 and statuses.count("pending") == len(statuses) - 1
    assert deliver(service.db, None, datetime(2026, 3, 10, 9, 1, tzinfo=UTC), HOOK)["sent"] == len(statuses) - 1
