"""The MLLP listener: HL7 v2 SIU messages over TCP, each stored and evaluated before it is acknowledged.

Built on python-hl7's asyncio MLLP server (`hl7.mllp`), which keeps a connection open across messages.
Each message is answered with an original-mode ACK: `MSA|AA` once it is committed (accepted, superseded,
stale or a duplicate; for one stored as stale, MSA-3 says so and why, since it was never evaluated);
`MSA|AR` when it is not an SIU message wnb uses or cannot be parsed or framed;
`MSA|AE` when its content is invalid or storing it failed. Every refused or invalid message is kept in the
data-quality queue with its reason, which the ACK carries in ERR. Service calls are synchronous and take
the database's write lock, so they run on worker threads; the messages of one connection are handled one
after another, in the order they came, while several connections proceed at once.

MLLP has no credentials: a message is taken only from a peer address its source may send from
(wnb.ingest.mllp_peers); any other is refused `AR` and kept. A connection silent for `idle_seconds` is closed, and
beyond `max_connections` open at once a new one is closed at once.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import hl7
import structlog
from hl7.mllp import HL7StreamReader, HL7StreamWriter, start_hl7_server

from wnb.core.errors import Forbidden, InvalidEvent, NotBound
from wnb.core.items import RawItem
from wnb.core.policy import Principal
from wnb.ingest.hl7 import Refused, decode_message, item_of, normalise, parse_message
from wnb.ingest.ingests import Ingests
from wnb.ingest.mllp_peers import Peers

log = structlog.get_logger("wnb.ingest.mllp")
VT, FS_CR = b"\x0b", b"\x1c\x0d"
MAX_MESSAGE_BYTES = 1 << 20
IDLE_SECONDS = 600.0
MAX_CONNECTIONS = 50
ORIGIN = "mllp"
_LOCATION = re.compile(r"^([A-Z][A-Z0-9]{2})(?:-(\d+))?(?:\s|$)")
_control_ids = itertools.count(1)


@dataclass(frozen=True)
class Answer:
    """What one message came to: the ACK code, the status in wnb, and the problem when there was one."""

    code: str  # AA | AE | AR
    status: str  # accepted | superseded | stale | duplicate | rejected | failed
    problem: InvalidEvent | None
    ack: bytes


def _escape(text: str) -> str:
    """Text made safe inside an HL7 field (the standard escape sequences)."""
    text = text.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\")
    text = text.replace("&", "\\T\\").replace("~", "\\R\\")
    return " ".join(text.split())


def _header_of(text: str) -> hl7.Message | None:
    """The MSH segment of a message wnb could not use, parsed on its own when possible (for the ACK)."""
    try:
        return parse_message(normalise(text).split("\r", 1)[0])
    except Exception:  # no header to answer to: the ACK is sent without one
        return None


def _field(message: hl7.Message | None, field: int, component: int = 1) -> str:
    if message is None:
        return ""
    try:
        return str(message.extract_field("MSH", 1, field, 1, component))
    except (KeyError, IndexError):
        return ""


def _error_code(problem: InvalidEvent, failed: bool) -> str:
    """The HL7 table 0357 error code for a problem."""
    if failed:
        return "207^Application internal error^HL70357"
    if problem.field == "MSH-9":
        return (
            "201^Unsupported event code^HL70357"
            if "trigger" in problem.reason
            else "200^Unsupported message type^HL70357"
        )
    if problem.field == "MSH-4":  # the sending facility is not one this peer may send for
        return "103^Table value not found^HL70357"
    if isinstance(problem, Refused):
        return "100^Segment sequence error^HL70357"
    if problem.reason.startswith(("no ", "the message has no", "required")) or "is required" in problem.reason:
        return "101^Required field missing^HL70357"
    return "102^Data type error^HL70357"


def build_ack(
    message: hl7.Message | None,
    code: str,
    at: datetime,
    problem: InvalidEvent | None = None,
    failed: bool = False,
    note: str | None = None,
) -> bytes:
    """An original-mode ACK to `message` (or to a message that could not be read), with ERR when not AA.

    `note` is MSA-3's text for an AA that the sender should still read (a message stored as stale).
    """
    trigger = _field(message, 9, 2)
    segments = [
        "|".join(
            [
                "MSH",
                "^~\\&",
                _escape(_field(message, 5)) or "WNB",
                _escape(_field(message, 6)),
                _escape(_field(message, 3)),
                _escape(_field(message, 4)),
                at.astimezone(UTC).strftime("%Y%m%d%H%M%S+0000"),
                "",
                f"ACK^{_escape(trigger)}^ACK" if trigger else "ACK",
                f"WNB{at:%Y%m%d%H%M%S}{next(_control_ids):06d}",
                _escape(_field(message, 11)) or "P",
                _escape(_field(message, 12)) or "2.5",
            ]
        ),
        f"MSA|{code}|{_escape(_field(message, 10))}"
        + (f"|{_escape(problem.reason)}" if problem else f"|{_escape(note)}" if note else ""),
    ]
    if problem is not None:
        where = _LOCATION.match(problem.field)
        location = f"{where.group(1)}^1^{where.group(2) or ''}" if where else ""
        detail = _escape(f"{problem.field}: {problem.reason}")
        segments.append(f"ERR||{location}|{_error_code(problem, failed)}|E||||{detail}")
    return ("\r".join(segments) + "\r").encode("utf-8", "replace")  # a header's bytes that were not text


def _refused_peer(item: RawItem, header: hl7.Message | None, peer: str, peers: Peers) -> RawItem | None:
    """The message kept as refused when its source may not send from `peer`; None when it may."""
    source = _field(header, 4).strip()
    reason = peers.refusal(source, peer)
    if reason is None:
        return None
    problem = Refused("MSH-4", reason)
    problem.identity = {"source": source or None, "event_id": _field(header, 10).strip() or None}
    return RawItem(item.line, item.text, problem)


def handle_message(
    service: Ingests,
    block: bytes,
    framing: str | None = None,
    peer: str | None = None,
    peers: Peers | None = None,
    by: Principal | None = None,
    origin: str = ORIGIN,
) -> Answer:
    """Store and evaluate one message (or keep a framing error); the ACK to send back. Runs on a worker thread.

    With `peers`, a message whose source (MSH-4) may not send from `peer` is refused (AR) and kept.
    `by`: the API key (or person) posting it over HTTP, held to its bound sources (MSH-4): `AR` otherwise;
    None for the MLLP listener (wnb itself, as `mllp`).
    """
    # UTF-8, else Windows-1252 (older PAS feeds send it); else refused, its bytes kept (surrogate escapes).
    decoded, undecodable = decode_message(block)
    text = decoded.replace("\r\n", "\n").replace("\r", "\n")  # kept one segment a line, as files are
    at = service.clock()
    message: hl7.Message | None = None
    if framing is not None:
        item = RawItem(None, text, Refused("MLLP", framing))
    elif undecodable is not None:
        item = RawItem(None, text, Refused("MSH", undecodable))
    else:
        try:
            message = parse_message(text)
            item = item_of(None, text, message)
        except Refused as refused:
            item = RawItem(None, text, refused)
    header = message or _header_of(text)
    if peers is not None and framing is None:
        item = _refused_peer(item, header, peer or "", peers) or item
    try:
        status, problem = service.ingest_one_or_reject(item, origin=origin, actor=ORIGIN, by=by)
    except Forbidden:
        raise  # the caller may not post at all (the API answers 403)
    except Exception as error:  # the database is away, nothing was committed: the sender must send it again
        log.error("mllp_message_failed", control_id=_field(header, 10), error=type(error).__name__)
        failure = InvalidEvent("MSH-10", "wnb could not store this message (internal error); send it again")
        return Answer("AE", "failed", failure, build_ack(header, "AE", at, failure, failed=True))
    if status == "stale":
        note = problem.reason if problem else "stored as stale, not evaluated"
        log.info("mllp_message_stale", control_id=_field(header, 10))
        return Answer("AA", status, None, build_ack(header, "AA", at, note=note))
    if status != "rejected":
        return Answer("AA", status, None, build_ack(header, "AA", at))
    assert problem is not None
    code = "AR" if isinstance(problem, Refused | NotBound) else "AE"
    log.info("mllp_message_rejected", control_id=_field(header, 10), code=code, field=problem.field)
    return Answer(code, status, problem, build_ack(header, code, at, problem))


@dataclass(frozen=True)
class Block:
    """One MLLP frame read from a connection: its content, or the framing problem that spoiled it."""

    data: bytes
    framing: str | None = None
    cut_short: bytes = b""  # what came before a second <VT> in the block: kept as a reject, not answered


async def read_block(reader: asyncio.StreamReader, limit: int) -> Block | None:
    """The next block; None at the end of the connection. Text before a block's last <VT> is not answered."""
    too_long = 0
    while True:
        try:
            raw = await reader.readuntil(FS_CR)
        except asyncio.LimitOverrunError as overrun:
            too_long += overrun.consumed
            await reader.readexactly(overrun.consumed)  # drop what was read of the over-long block
            continue
        except asyncio.IncompleteReadError as end:
            if end.partial.strip(b" \r\n\x0b"):
                return Block(end.partial, "the connection closed in the middle of a message (no <FS><CR>)")
            return None
        if too_long:
            return Block(b"", f"message longer than {limit} bytes ({too_long + len(raw)} bytes discarded)")
        body = raw[: -len(FS_CR)]
        if VT not in body:
            return Block(body, "the block does not begin with <VT> (MLLP start block)")
        start = body.rindex(VT)
        return Block(body[start + 1 :], cut_short=body[:start].strip(b" \r\n\x0b"))


class Listener:
    """An MLLP server over one Service; `start` binds it, `close` stops it.

    `peers` says which addresses may send for which source (default: any source, from loopback only).
    """

    def __init__(
        self,
        service: Ingests,
        host: str = "127.0.0.1",
        port: int = 0,
        workers: int = 4,
        limit: int = MAX_MESSAGE_BYTES,
        peers: Peers | None = None,
        idle_seconds: float = IDLE_SECONDS,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.service, self.host, self.port, self.limit = service, host, port, limit
        self.peers = peers or Peers()
        self.idle_seconds, self.max_connections = idle_seconds, max_connections
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="wnb-mllp")
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._in_flight = 0  # messages being stored and answered right now
        self._closing = False

    async def start(self) -> int:
        """Listen; returns the bound port (useful when asked for port 0)."""
        self._server = await start_hl7_server(self._connection, self.host, self.port, limit=self.limit)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("mllp_listening", host=self.host, port=self.port)
        return self.port

    async def close(self, grace_seconds: float = 10.0) -> None:
        """Stop: take no new message, let those being stored be answered, then close every connection.

        A message read but not yet handled is never answered, so its sender sends it again (idempotent).
        """
        self._closing = True
        if self._server is not None:
            self._server.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_seconds
        while self._in_flight and loop.time() < deadline:
            await asyncio.sleep(0.02)
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        await loop.run_in_executor(None, self._pool.shutdown)

    def _connection(self, reader: HL7StreamReader, writer: HL7StreamWriter) -> None:
        if len(self._connections) >= self.max_connections:
            log.warning("mllp_connection_refused", reason="too_many_connections", open=len(self._connections))
            writer.close()
            return
        task = asyncio.get_running_loop().create_task(self._converse(reader, writer))
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)

    async def _converse(self, reader: HL7StreamReader, writer: HL7StreamWriter) -> None:
        """Answer each block of one connection in turn until the peer closes it."""
        loop = asyncio.get_running_loop()
        peername = writer.get_extra_info("peername")
        peer = str(peername[0]) if peername else ""
        try:
            while (block := await self._next_block(reader)) is not None and not self._closing:
                self._in_flight += 1
                try:
                    if block.cut_short:
                        cut = "a message cut short: a new <VT> began before its <FS><CR>"
                        await loop.run_in_executor(self._pool, handle_message, self.service, block.cut_short, cut)
                    answer = await loop.run_in_executor(
                        self._pool, handle_message, self.service, block.data, block.framing, peer, self.peers
                    )
                    if reader.at_eof() and block.framing and block.framing.startswith("the connection closed"):
                        break  # nobody is left to answer
                    writer.writeblock(answer.ack)
                    await writer.drain()
                finally:
                    self._in_flight -= 1
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _next_block(self, reader: HL7StreamReader) -> Block | None:
        """The next block, or None at the end of the connection or once it was silent for `idle_seconds`."""
        try:
            return await asyncio.wait_for(read_block(reader, self.limit), self.idle_seconds)
        except TimeoutError:
            log.info("mllp_connection_idle_closed", idle_seconds=self.idle_seconds)
            return None
