"""The MLLP listener on loopback: python-hl7's own mllp_send, raw sockets for framing errors and concurrency."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.factories import running_listener
from tests.ingest.test_hl7 import ROOT, siu
from wnb.ingest.mllp import Listener
from wnb.service import Service
from wnb.store import listing

VT, FS_CR = b"\x0b", b"\x1c\r"


def frame(text: str) -> bytes:
    return VT + text.replace("\n", "\r").encode() + FS_CR


@pytest.fixture
def listening(service: Service) -> Iterator[Listener]:
    """A real listener on a free loopback port, its event loop on a thread of its own."""
    with running_listener(service, limit=4096) as listener:
        yield listener


def connect(listener: Listener) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", listener.port), timeout=20)
    return connection


def read_acks(connection: socket.socket, count: int) -> list[str]:
    data = b""
    while data.count(FS_CR) < count:
        chunk = connection.recv(65536)
        assert chunk, f"connection closed after {data.count(FS_CR)} of {count} answers"
        data += chunk
    return [block.lstrip(VT).decode() for block in data.split(FS_CR)[:count]]


def msa(ack: str) -> tuple[str, str]:
    """(acknowledgement code, the control id acknowledged) of an ACK."""
    fields = next(segment for segment in ack.split("\r") if segment.startswith("MSA|")).split("|")
    return fields[1], fields[2]


def err(ack: str) -> str:
    return next(segment for segment in ack.split("\r") if segment.startswith("ERR|"))


def stored_events(service: Service) -> int:
    with service.db.connect() as connection:
        return int(connection.exec_driver_sql("SELECT count(*) FROM event").scalar_one())


def rejects(service: Service) -> list[dict[str, object]]:
    with service.db.connect() as connection:
        return listing.rejects(connection, include_handled=True)


def test_mllp_send_delivers_a_file_and_gets_an_answer_per_message(
    tmp_path: Path, listening: Listener, service: Service
) -> None:
    feed = tmp_path / "feed.hl7"
    feed.write_text(
        siu("S12", "M1", sent="20260302090000") + siu("S26", "M2") + siu("S26", "M3", nhs="9990000019^^^NHS"),
        encoding="utf-8",
    )
    mllp_send = Path(sys.executable).parent / "mllp_send"
    result = subprocess.run(
        [str(mllp_send), "--loose", "--file", str(feed), "--port", str(listening.port), "127.0.0.1"],
        capture_output=True,
        timeout=60,
        check=True,
    )
    answers = re.findall(rb"MSA\|(A[AER])\|([^|\r]*)", result.stdout)
    assert answers == [(b"AA", b"M1"), (b"AA", b"M2"), (b"AE", b"M3")]
    with service.db.connect() as connection:
        tasks = listing.tasks(connection, include_closed=False)
    assert {task["code"] for task in tasks} >= {"reoffer-appointment", "letter-to-parent"}
    assert [reject["field"] for reject in rejects(service)] == ["PID-3 (nhs_number)"]


def test_an_invalid_message_gets_ae_with_the_reason_in_err_and_is_kept(listening: Listener, service: Service) -> None:
    with connect(listening) as connection:
        connection.sendall(frame(siu(born="20190231")))
        (ack,) = read_acks(connection, 1)
    assert msa(ack) == ("AE", "MSG1")
    assert err(ack).startswith("ERR||PID^1^7|102^Data type error^HL70357|E||||PID-7")
    assert rejects(service)[0]["field"] == "PID-7"


def test_a_message_that_is_not_siu_gets_ar_and_is_kept(listening: Listener, service: Service) -> None:
    with connect(listening) as connection:
        connection.sendall(frame(siu(msh_type="ADT^A01", control_id="ADT9")))
        (ack,) = read_acks(connection, 1)
    assert msa(ack) == ("AR", "ADT9")
    assert "200^Unsupported message type" in err(ack)
    assert rejects(service)[0]["field"] == "MSH-9"
    assert rejects(service)[0]["event_id"] == "ADT9"


def test_a_duplicate_message_is_acknowledged_and_stored_once(listening: Listener, service: Service) -> None:
    with connect(listening) as connection:
        connection.sendall(frame(siu()) + frame(siu()))
        acks = read_acks(connection, 2)
    assert [msa(ack) for ack in acks] == [("AA", "MSG1"), ("AA", "MSG1")]
    assert stored_events(service) == 1


def msa_text(ack: str) -> str:
    fields = next(segment for segment in ack.split("\r") if segment.startswith("MSA|")).split("|")
    return fields[3] if len(fields) > 3 else ""


def test_a_message_stored_as_stale_is_acknowledged_aa_saying_so_in_msa_3(listening: Listener, service: Service) -> None:
    # A no-show, then its booking received after it (SIU^S12 sent later): the booking never undoes the outcome.
    booking = siu("S12", "M2", sent="20260302130000")
    older = siu("S26", "M3", sent="20260302110000", status="Complete")  # "attended", recorded before the no-show
    with connect(listening) as connection:
        connection.sendall(frame(siu("S26", "M1")) + frame(booking) + frame(older))
        acks = read_acks(connection, 3)
    assert [msa(ack) for ack in acks] == [("AA", "M1"), ("AA", "M2"), ("AA", "M3")]
    assert msa_text(acks[0]) == ""
    assert msa_text(acks[1]).startswith("stored as stale, not evaluated: a booking never replaces")
    assert msa_text(acks[2]).startswith("stored as stale, not evaluated: attended recorded before")
    assert not any(segment.startswith("ERR|") for ack in acks for segment in ack.split("\r"))
    assert stored_events(service) == 3
    assert [(item["kind"], item["event_id"]) for item in rejects(service)] == [
        ("stale-outcome", "M2"),
        ("stale-outcome", "M3"),
    ]


def test_a_block_without_a_start_character_is_refused_and_the_next_message_accepted(
    listening: Listener, service: Service
) -> None:
    with connect(listening) as connection:
        unframed = siu(control_id="BAD").replace("\n", "\r").encode() + FS_CR
        connection.sendall(unframed + frame(siu(control_id="GOOD")))
        bad, good = read_acks(connection, 2)
    assert msa(bad) == ("AR", "BAD")
    assert "<VT>" in err(bad)
    assert msa(good) == ("AA", "GOOD")
    assert stored_events(service) == 1
    assert rejects(service)[0]["field"] == "MLLP"


def test_line_breaks_between_blocks_are_ignored(listening: Listener, service: Service) -> None:
    with connect(listening) as connection:
        connection.sendall(b"\r\n" + frame(siu()))
        (ack,) = read_acks(connection, 1)
    assert msa(ack) == ("AA", "MSG1")
    assert rejects(service) == []


def test_a_message_cut_short_by_a_new_start_block_is_kept_and_the_next_answered(
    listening: Listener, service: Service
) -> None:
    cut = VT + siu(control_id="CUT").replace("\n", "\r").encode()[:60]
    with connect(listening) as connection:
        connection.sendall(cut + frame(siu(control_id="WHOLE")))
        (ack,) = read_acks(connection, 1)
    assert msa(ack) == ("AA", "WHOLE")
    (kept,) = rejects(service)
    assert kept["field"] == "MLLP" and "cut short" in str(kept["reason"])


def test_an_over_long_message_is_refused_and_the_connection_goes_on(listening: Listener, service: Service) -> None:
    long_message = siu(control_id="LONG", extra=("NTE|1||" + "x" * 10_000,))
    with connect(listening) as connection:
        connection.sendall(frame(long_message) + frame(siu(control_id="NEXT")))
        too_long, following = read_acks(connection, 2)
    assert msa(too_long)[0] == "AR"
    assert "longer than 4096 bytes" in err(too_long)
    assert msa(following) == ("AA", "NEXT")


def test_a_message_cut_off_by_the_peer_closing_is_kept_as_a_reject(listening: Listener, service: Service) -> None:
    with connect(listening) as connection:
        connection.sendall(VT + siu(control_id="CUT").replace("\n", "\r").encode())
    for _ in range(200):
        if rejects(service):
            break
        threading.Event().wait(0.05)
    assert "closed in the middle of a message" in str(rejects(service)[0]["reason"])


def test_several_connections_at_once_get_their_answers_in_order(listening: Listener, service: Service) -> None:
    def converse(name: str, answers: dict[str, list[tuple[str, str]]]) -> None:
        ids = [f"{name}-{n}" for n in range(8)]
        with connect(listening) as connection:
            connection.sendall(b"".join(frame(siu(control_id=i, appointment=f"P{i}|F{i}")) for i in ids))
            answers[name] = [msa(ack) for ack in read_acks(connection, len(ids))]

    answers: dict[str, list[tuple[str, str]]] = {}
    threads = [threading.Thread(target=converse, args=(f"C{c}", answers)) for c in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert answers == {f"C{c}": [("AA", f"C{c}-{n}") for n in range(8)] for c in range(4)}
    assert stored_events(service) == 32


def test_wnb_mllp_listens_on_a_free_port_and_acknowledges(tmp_path: Path) -> None:
    environment = {
        **os.environ,
        "WNB_DATABASE_URL": f"sqlite:///{tmp_path / 'mllp.db'}",
        "WNB_RULES_DIR": str(ROOT / "rules" / "default"),
        "WNB_LOG_LEVEL": "WARNING",
    }
    wnb = Path(sys.executable).parent / "wnb"
    process = subprocess.Popen(
        [str(wnb), "mllp", "--port", "0"], stdout=subprocess.PIPE, env=environment, cwd=tmp_path, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        port = int(line.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=20) as connection:
            connection.sendall(frame(siu()))
            (ack,) = read_acks(connection, 1)
        assert msa(ack) == ("AA", "MSG1")
        process.terminate()
        assert process.wait(20) == 0  # SIGTERM stops it cleanly, between messages
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(20)
        if process.stdout is not None:
            process.stdout.close()


def test_the_http_service_runs_an_mllp_listener_beside_the_api(service: Service) -> None:
    import time

    import uvicorn

    from wnb.api import create_app

    app = create_app(service, mllp=("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        with socket.create_connection(("127.0.0.1", app.state.mllp.port), timeout=20) as connection:
            connection.sendall(frame(siu()))
            (ack,) = read_acks(connection, 1)
        assert msa(ack) == ("AA", "MSG1")
    finally:
        server.should_exit = True
        thread.join(20)
