"""Notifications that may have arrived are never sent twice, and none is lost unseen, on both stores.

A mail server that answers the message too late, or a webhook whose answer never comes, may hold the message:
the row becomes `uncertain` and is not sent again. A failure before the message could have arrived is retried
as ever. Every `uncertain` or `failed` row opens exactly one admin task naming it. Real servers on loopback:
aiosmtpd for e-mail, an HTTP server for webhooks.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import text

from tests.conftest import ROOT, FixedClock
from tests.factories import run_wnb
from tests.notify.test_notify import ADDRESSES, MISSED, PLAN_CHILD
from tests.server import free_port, serving
from tests.web_fixtures import SECRET
from wnb import metrics
from wnb.api import create_app
from wnb.core.items import RawItem
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.notify import (
    SmtpSettings,
    deliver,
    mark_uncertain_after_restart,
    open_undelivered_tasks,
    record_backlog,
)
from wnb.notify.webhook import WebhookSettings
from wnb.service import Service
from wnb.settings import Settings, load_settings
from wnb.store import listing
from wnb.store.accounts import create_user
from wnb.store.db import writing

STORES = ("sqlite", "postgres")  # every test here runs on both stores (conftest.py)
NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
LATER = NOW + timedelta(days=1)  # long past any backoff: a row still pending would be sent now
TIMEOUT = 0.5  # seconds wnb waits for an answer here; the slow servers wait far longer
HOOK = WebhookSettings("a-webhook-secret-for-tests-only-0123456789", timeout=TIMEOUT)


class SlowMailbox:
    """Collects messages; `slow` names the command (RCPT, DATA or QUIT) it answers too late, after taking it."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.replies: list[str] = []
        self.slow = ""
        self.wait = 5 * TIMEOUT
        self.refuse_recipient = ""  # the answer to RCPT instead of 250, e.g. 550 no such user

    async def _answer_late(self, command: str) -> None:
        if self.slow == command:
            await asyncio.sleep(self.wait)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        await self._answer_late("RCPT")
        if self.refuse_recipient:
            return self.refuse_recipient
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        if self.replies:
            return self.replies.pop(0)
        self.messages.append(envelope)  # taken: a late answer does not undo that
        await self._answer_late("DATA")
        return "250 OK"

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        await self._answer_late("QUIT")
        return "221 Bye"


@pytest.fixture
def mailbox() -> Iterator[tuple[SlowMailbox, SmtpSettings]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    box = SlowMailbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, SmtpSettings("127.0.0.1", port, "wnb@trust.example", timeout=TIMEOUT)
    controller.stop()


class Receiver:
    """A loopback webhook. `mode`: `answer` (204), `refuse` (404), `hang` (reads the request, never answers),
    `cut` (reads it, closes the connection without an answer) or `slow-body` (200, never finishes the body)."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.mode = "answer"
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                receiver.requests.append(self.rfile.read(int(self.headers["Content-Length"])))
                if receiver.mode == "hang":
                    receiver.release.wait(30)
                elif receiver.mode == "cut":
                    self.close_connection = True
                elif receiver.mode == "slow-body":
                    self.send_response(200)
                    self.send_header("Content-Length", "100")
                    self.end_headers()
                    self.wfile.flush()
                    receiver.release.wait(30)
                else:
                    self.send_response(404 if receiver.mode == "refuse" else 204)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/wnb?token=not-for-tasks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.close()


@pytest.fixture
def red_flag(db_url: str, ruleset: Ruleset) -> Iterator[Callable[[dict[str, tuple[str, ...]]], Service]]:
    """A service on the store whose one red flag (child on a plan not brought) is queued for `targets`."""
    services: list[Service] = []

    def make(targets: dict[str, tuple[str, ...]]) -> Service:
        service = Service(open_database(db_url), ruleset, FixedClock(NOW), notify=targets)
        service.import_context([RawItem(1, "", dict(PLAN_CHILD))], origin="test")
        service.ingest_one(RawItem(1, "", dict(MISSED)), origin="test")
        services.append(service)
        return service

    yield make
    for service in services:
        service.db.dispose()


def by_mail(red_flag: Callable[[dict[str, tuple[str, ...]]], Service]) -> Service:
    return red_flag(dict(ADDRESSES))


def by_webhook(red_flag: Callable[[dict[str, tuple[str, ...]]], Service], url: str) -> Service:
    return red_flag(Settings(webhook_url=url).notify_targets())


def outbox(service: Service) -> list[tuple[Any, ...]]:
    with service.db.connect() as connection:
        query = "SELECT id, status, attempts, last_error, admin_task_id FROM outbox ORDER BY id"
        return [tuple(row) for row in connection.exec_driver_sql(query)]


def admin_tasks(service: Service) -> list[dict[str, Any]]:
    with service.db.connect() as connection:
        return listing.tasks(connection, include_closed=True, role="admin")


def first_note(service: Service, task_id: str) -> str:
    """The note the task was created with (what the admin is asked to do)."""
    query = text("SELECT note FROM task_history WHERE task_id = :id ORDER BY id")
    with service.db.connect() as connection:
        return str(connection.execute(query, {"id": int(task_id.removeprefix("T"))}).scalar())


# ---- e-mail ----


def test_a_mail_server_answering_the_message_too_late_gets_it_once_and_the_row_is_uncertain(
    red_flag: Any, mailbox: tuple[SlowMailbox, SmtpSettings]
) -> None:
    box, smtp = mailbox
    service = by_mail(red_flag)
    box.slow = "DATA"  # takes the message, answers after wnb stopped waiting
    assert deliver(service.db, smtp, NOW) == {"sent": 0, "retried": 0, "failed": 0, "uncertain": 1}
    box.slow = ""
    assert deliver(service.db, smtp, LATER)["sent"] == 0  # never again, even when the server is quick
    assert len(box.messages) == 1
    ((_, status, attempts, error, _),) = outbox(service)
    assert (status, attempts) == ("uncertain", 1) and "no answer after the message was sent" in error


def test_a_mail_server_too_slow_before_the_message_was_asked_for_is_retried(
    red_flag: Any, mailbox: tuple[SlowMailbox, SmtpSettings]
) -> None:
    box, smtp = mailbox
    service = by_mail(red_flag)
    box.slow = "RCPT"  # before DATA: the server cannot have the message
    assert deliver(service.db, smtp, NOW)["retried"] == 1
    assert outbox(service)[0][1:3] == ("pending", 1) and box.messages == []
    box.slow = ""
    assert deliver(service.db, smtp, LATER)["sent"] == 1
    assert len(box.messages) == 1 and admin_tasks(service) == []


def test_a_mail_server_refusing_the_connection_is_retried_and_opens_no_task(red_flag: Any) -> None:
    service = by_mail(red_flag)
    nobody = SmtpSettings("127.0.0.1", free_port(), "wnb@trust.example", timeout=TIMEOUT)
    assert deliver(service.db, nobody, NOW)["retried"] == 1
    assert outbox(service)[0][1:] == ("pending", 1, "ConnectionRefusedError", None)


def test_a_mail_server_slow_to_say_goodbye_after_taking_the_message_counts_it_sent(
    red_flag: Any, mailbox: tuple[SlowMailbox, SmtpSettings]
) -> None:
    box, smtp = mailbox
    service = by_mail(red_flag)
    box.slow = "QUIT"  # the 250 came: what QUIT does changes nothing
    assert deliver(service.db, smtp, NOW)["sent"] == 1
    assert deliver(service.db, smtp, LATER)["sent"] == 0
    assert len(box.messages) == 1 and outbox(service)[0][1] == "sent"


def test_an_uncertain_e_mail_opens_one_admin_task_naming_it_and_saying_to_ask_the_recipient(
    red_flag: Any, mailbox: tuple[SlowMailbox, SmtpSettings]
) -> None:
    box, smtp = mailbox
    service = by_mail(red_flag)
    box.slow = "DATA"
    deliver(service.db, smtp, NOW)
    ((row_id, _, _, _, task_id),) = outbox(service)
    (task,) = admin_tasks(service)
    assert task["id"] == f"T{task_id}"
    assert (task["service"], task["code"], task["nhs_number"]) == (f"outbox:{row_id}", "notification-uncertain", "")
    note = first_note(service, task["id"])
    assert f"outbox row {row_id}" in note and "sg@trust.example" in note and "Ask the recipient" in note
    # Later rounds, a restart and the catch-up for rows without a task open no second one.
    deliver(service.db, smtp, LATER)
    mark_uncertain_after_restart(service.db, LATER)
    assert open_undelivered_tasks(service.db, LATER) == []
    assert len(admin_tasks(service)) == 1


def test_a_permanently_refused_e_mail_opens_an_admin_task(
    red_flag: Any, mailbox: tuple[SlowMailbox, SmtpSettings]
) -> None:
    box, smtp = mailbox
    service = by_mail(red_flag)
    box.replies = ["550 no such mailbox"]
    assert deliver(service.db, smtp, NOW)["failed"] == 1
    ((row_id, status, _, _, task_id),) = outbox(service)
    (task,) = admin_tasks(service)
    assert status == "failed" and task["id"] == f"T{task_id}"
    assert (task["service"], task["code"]) == (f"outbox:{row_id}", "notification-failed")
    assert "could not be delivered (550" in first_note(service, task["id"])


def test_a_recipient_refused_for_good_fails_and_opens_an_admin_task_instead_of_retrying_forever(
    red_flag: Any, mailbox: tuple[SlowMailbox, SmtpSettings]
) -> None:
    box, smtp = mailbox
    service = by_mail(red_flag)
    box.refuse_recipient = "550 5.1.1 no such user"
    assert deliver(service.db, smtp, NOW)["failed"] == 1
    assert deliver(service.db, smtp, LATER)["failed"] == 0 and box.messages == []
    ((_, status, attempts, error, task_id),) = outbox(service)
    assert (status, attempts) == ("failed", 1) and error.startswith("550") and task_id is not None


def test_a_transient_refusal_opens_no_admin_task(red_flag: Any, mailbox: tuple[SlowMailbox, SmtpSettings]) -> None:
    box, smtp = mailbox
    service = by_mail(red_flag)
    box.replies = ["451 try again later"]
    assert deliver(service.db, smtp, NOW)["retried"] == 1
    assert admin_tasks(service) == [] and outbox(service)[0][4] is None


def test_a_row_interrupted_while_sending_opens_its_admin_task_when_marked_uncertain(red_flag: Any) -> None:
    service = by_mail(red_flag)
    with writing(service.db) as connection:
        connection.exec_driver_sql("UPDATE outbox SET status = 'sending', claimed_at = NULL")  # died mid-send
    assert mark_uncertain_after_restart(service.db, NOW) == 1
    ((row_id, status, _, _, task_id),) = outbox(service)
    (task,) = admin_tasks(service)
    assert status == "uncertain" and task["id"] == f"T{task_id}" and task["service"] == f"outbox:{row_id}"


def test_undelivered_rows_without_a_task_get_exactly_one_even_with_replicas_racing(red_flag: Any, db_url: str) -> None:
    service = by_mail(red_flag)
    service.sweep(datetime(2026, 3, 10, 9, tzinfo=UTC))  # escalations: more rows
    with writing(service.db) as connection:  # as rows were before revision 0009: undelivered, no task
        connection.exec_driver_sql("UPDATE outbox SET status = 'failed', last_error = '550 old'")
    rows = len(outbox(service))
    assert rows > 2
    replicas = [open_database(db_url) for _ in range(3)]
    opened: list[list[str]] = []
    start = threading.Barrier(len(replicas))

    def report(engine: Any) -> None:
        start.wait()
        opened.append(open_undelivered_tasks(engine, NOW))

    threads = [threading.Thread(target=report, args=(engine,)) for engine in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for engine in replicas:
        engine.dispose()
    assert sorted(task for tasks in opened for task in tasks) == sorted(t["id"] for t in admin_tasks(service))
    assert len(admin_tasks(service)) == rows
    linked = [task_id for _, _, _, _, task_id in outbox(service)]
    assert None not in linked and len(set(linked)) == rows


def test_the_backlog_gauge_counts_uncertain_rows(red_flag: Any, mailbox: tuple[SlowMailbox, SmtpSettings]) -> None:
    box, smtp = mailbox
    service = by_mail(red_flag)
    box.slow = "DATA"
    deliver(service.db, smtp, NOW)
    assert record_backlog(service.db)["uncertain"] == 1
    assert metrics.OUTBOX_BACKLOG.labels(status="uncertain")._value.get() == 1


# ---- webhooks ----


@pytest.mark.parametrize("mode", ["hang", "cut"])
def test_a_webhook_post_sent_but_never_answered_is_uncertain_never_posted_again_and_opens_a_task(
    red_flag: Any, receiver: Receiver, mode: str
) -> None:
    service = by_webhook(red_flag, receiver.url)
    receiver.mode = mode
    assert deliver(service.db, None, NOW, HOOK)["uncertain"] == 1
    receiver.mode = "answer"
    assert deliver(service.db, None, LATER, HOOK)["sent"] == 0
    assert len(receiver.requests) == 1
    ((row_id, status, _, error, task_id),) = outbox(service)
    assert status == "uncertain" and "no answer after the request was sent" in error
    (task,) = admin_tasks(service)
    assert (task["id"], task["service"], task["code"]) == (f"T{task_id}", f"outbox:{row_id}", "notification-uncertain")
    note = first_note(service, task["id"])
    assert "http://127.0.0.1:" in note and "token" not in note  # the webhook's host, never its query


def test_a_webhook_that_answered_2xx_but_never_finished_the_body_was_delivered(
    red_flag: Any, receiver: Receiver
) -> None:
    service = by_webhook(red_flag, receiver.url)
    receiver.mode = "slow-body"
    assert deliver(service.db, None, NOW, HOOK)["sent"] == 1
    assert deliver(service.db, None, LATER, HOOK)["sent"] == 0
    assert len(receiver.requests) == 1 and admin_tasks(service) == []


def test_a_webhook_refusing_the_connection_is_retried_and_opens_no_task(red_flag: Any) -> None:
    service = by_webhook(red_flag, f"http://127.0.0.1:{free_port()}/nobody-listens")
    assert deliver(service.db, None, NOW, HOOK)["retried"] == 1
    (_, status, attempts, error, task_id) = outbox(service)[0]
    assert (status, attempts, error, task_id) == ("pending", 1, "ConnectionRefusedError", None)


def test_a_webhook_answering_a_client_error_opens_a_failed_task(red_flag: Any, receiver: Receiver) -> None:
    service = by_webhook(red_flag, receiver.url)
    receiver.mode = "refuse"
    assert deliver(service.db, None, NOW, HOOK)["failed"] == 1
    (task,) = admin_tasks(service)
    assert task["code"] == "notification-failed" and "HTTP 404" in first_note(service, task["id"])


# ---- where people see it ----


def test_wnb_outbox_shows_an_uncertain_row_with_its_admin_task_and_what_to_do(
    red_flag: Any, mailbox: tuple[SlowMailbox, SmtpSettings], receiver: Receiver, db_url: str
) -> None:
    box, smtp = mailbox
    service = red_flag(Settings(webhook_url=receiver.url, notify=dict(ADDRESSES)).notify_targets())
    box.slow, receiver.mode = "DATA", "hang"
    assert deliver(service.db, smtp, NOW, HOOK)["uncertain"] == 2
    env = {"WNB_DATABASE_URL": db_url, "COLUMNS": "250"}
    shown = run_wnb(ROOT, "outbox", env=env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("uncertain") >= 2 and "ask the recipient whether it did" in shown.stdout
    assert "2 uncertain, 0 failed: each has an admin task" in shown.stdout
    scripted = run_wnb(ROOT, "outbox", "--json", env=env)
    assert scripted.returncode == 0, scripted.stderr
    items = json.loads(scripted.stdout)
    assert {item["status"] for item in items} == {"uncertain"}
    assert sorted(item["admin_task"] for item in items) == sorted(task["id"] for task in admin_tasks(service))
    assert "token" not in scripted.stdout and "token" not in shown.stdout  # a webhook shows its host only


def test_the_admin_worklist_says_to_ask_the_recipient_and_explain_names_the_row(
    red_flag: Any, mailbox: tuple[SlowMailbox, SmtpSettings]
) -> None:
    box, smtp = mailbox
    service = by_mail(red_flag)
    box.slow = "DATA"
    deliver(service.db, smtp, NOW)
    ((row_id, _, _, _, task_id),) = outbox(service)
    create_user(service.db, "admin.kim", "admin", "administrator passphrase")
    app = create_app(service, settings=load_settings(session_secret=SECRET))
    with serving(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        form = client.get("/web/sign-in")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None
        answer = client.post(
            "/web/sign-in", data={"csrf": csrf[1], "name": "admin.kim", "password": "administrator passphrase"}
        )
        assert answer.status_code == 303
        worklist = client.get("/web/", params={"role": "admin"}).text
        explained = client.get(f"/web/explain/T{task_id}").text
    assert f'id="task-T{task_id}"' in worklist and "Ask the recipient whether a notification arrived" in worklist
    assert f"outbox row {row_id}" in explained and "Ask the recipient whether it arrived" in explained
