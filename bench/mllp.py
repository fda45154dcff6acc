"""MLLP benchmark: 20,000 SIU^S26 messages sent over MLLP to a real listener on a fresh SQLite file.

Beside the MLLP figures it prints, from the same run and the same events: the NDJSON file path
(`wnb ingest` of the canonical events, run first and again last) and the HL7 file path (`wnb ingest` of the
same messages as a file).
The MLLP client runs in its own process and waits for each ACK before sending the next message, as an
original-mode HL7 sender does; with several connections each carries the messages of its own children, so
each child's messages keep their order. Every message is committed before it is acknowledged (one
transaction each), where the file paths commit 1,000 events at a time.

    .venv/bin/python bench/mllp.py                     # 20,000 messages, 1 and 4 connections
    .venv/bin/python bench/mllp.py --messages 2000     # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

VT, FS_CR = b"\x0b", b"\x1c\r"


def nhs_numbers(count: int) -> list[str]:
    """Synthetic NHS numbers: 999 then six digits and a valid Modulus 11 check digit."""
    found: list[str] = []
    serial = 0
    while len(found) < count:
        stem = f"999{serial:06d}"
        serial += 1
        check = 11 - sum(int(d) * w for d, w in zip(stem, range(10, 1, -1), strict=True)) % 11
        if check == 10:
            continue
        found.append(stem + str(0 if check == 11 else check))
    return found


SERVICES = ["community-paediatrics", "paediatric-diabetes", "audiology", "orthoptics", "paediatric-asthma"]


def messages(count: int, children: int) -> list[tuple[str, str]]:
    """(NHS number, message text) of `count` S26 messages, in the order they are sent (by time recorded)."""
    people = nhs_numbers(children)
    start = datetime(2025, 4, 1, 9, 0, tzinfo=UTC)
    out = []
    for n in range(count):
        person = people[(n * 7919) % children]
        at = start + timedelta(minutes=25 * n)
        recorded = at + timedelta(hours=2)
        born = f"{2008 + (n * 31) % 17}0{1 + n % 9}1{n % 9}"
        text = "\r".join(
            [
                f"MSH|^~\\&|PAS|RXX-PAS|WNB|RXX|{recorded:%Y%m%d%H%M%S}+0000||SIU^S26^SIU_S12|M{n:07d}|P|2.5",
                f"SCH|P{n:07d}^PAS|F{n:07d}^PAS|||||||||^^^{at:%Y%m%d%H%M%S}+0000||||||||||||||Noshow",
                f"PID|1||H{n:07d}^^^RXX^MR~{person}^^^NHS^NH||Patient^Synthetic||{born}",
                f"AIS|1||{SERVICES[n % len(SERVICES)]}",
            ]
        )
        out.append((person, text + "\r"))
    return out


def client(port: int, file: Path, connections: int) -> None:
    """Send the messages of `file` (JSON lines: [nhs number, text]) over `connections` connections."""
    lanes: list[list[bytes]] = [[] for _ in range(connections)]
    for line in file.read_text().splitlines():
        person, text = json.loads(line)
        lanes[int(person) % connections].append(VT + text.encode() + FS_CR)

    async def lane(blocks: list[bytes]) -> list[str]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        codes = []
        for block in blocks:
            writer.write(block)
            await writer.drain()
            ack = await reader.readuntil(FS_CR)
            codes.append(ack.split(b"MSA|", 1)[1][:2].decode())
        writer.close()
        return codes

    async def all_lanes() -> list[list[str]]:
        return await asyncio.gather(*(lane(blocks) for blocks in lanes))

    results = asyncio.run(all_lanes())
    codes = [code for lane_codes in results for code in lane_codes]
    print(json.dumps({code: codes.count(code) for code in sorted(set(codes))}))


def fresh_service(path: Path):  # type: ignore[no-untyped-def]
    from wnb.database import open_database
    from wnb.rule_files import load_ruleset
    from wnb.service import Service

    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return Service(open_database(f"sqlite:///{path}"), load_ruleset(REPO / "rules" / "default"))


def run_file(out: Path, name: str, file: Path) -> tuple[float, dict[str, int]]:
    from wnb.ingest import read_file

    service = fresh_service(out / f"{name}.db")
    began = time.perf_counter()
    counts = service.ingest(read_file(file), origin=file.name)
    seconds = time.perf_counter() - began
    service.db.dispose()
    return seconds, dict(counts)


def run_mllp(out: Path, sent: Path, connections: int) -> tuple[float, dict[str, int]]:
    from wnb.ingest.mllp import Listener

    service = fresh_service(out / f"mllp-{connections}.db")
    listener = Listener(service, workers=max(2, connections))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    port = asyncio.run_coroutine_threadsafe(listener.start(), loop).result(30)
    began = time.perf_counter()
    answer = subprocess.run(
        [sys.executable, __file__, "--client", str(port), str(sent), str(connections)],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - began
    asyncio.run_coroutine_threadsafe(listener.close(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(30)
    service.db.dispose()
    return seconds, json.loads(answer.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000, help="S26 messages to send (default 20000)")
    parser.add_argument("--children", type=int, default=5_000, help="children they are about (default 5000)")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 4], help="MLLP connections (default 1 4)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out", help="work directory (default bench/out)")
    parser.add_argument("--client", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client(int(args.client[0]), Path(args.client[1]), int(args.client[2]))
        return

    import logging

    from wnb.ingest.hl7 import to_item
    from wnb.logs import configure

    configure(logging.WARNING)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    sent = messages(args.messages, args.children)
    (out / "mllp-messages.jsonl").write_text("".join(json.dumps([p, t]) + "\n" for p, t in sent))
    (out / "mllp-messages.hl7").write_text("".join(text.replace("\r", "\n") for _, text in sent))
    events = [to_item(None, text).data for _, text in sent]
    assert all(isinstance(event, dict) for event in events), "every benchmark message maps to an event"
    (out / "mllp-events.ndjson").write_text("".join(json.dumps(event) + "\n" for event in events))

    # The NDJSON baseline runs first and again last, so drift in the machine's load shows in the figures.
    rows: list[tuple[str, float, dict[str, int]]] = []
    seconds, counts = run_file(out, "ndjson", out / "mllp-events.ndjson")
    rows.append(("NDJSON file, first run", seconds, counts))
    for connections in args.connections:
        seconds, counts = run_mllp(out, out / "mllp-messages.jsonl", connections)
        rows.append((f"MLLP, {connections} connection{'s' if connections > 1 else ''}", seconds, counts))
    seconds, counts = run_file(out, "hl7file", out / "mllp-messages.hl7")
    rows.append(("HL7 file of the messages", seconds, counts))
    seconds, counts = run_file(out, "ndjson", out / "mllp-events.ndjson")
    rows.append(("NDJSON file, last run", seconds, counts))

    baseline = 2 * args.messages / (rows[0][1] + rows[-1][1])
    print(f"{args.messages:,} SIU^S26 messages for {args.children:,} children, fresh SQLite file per run")
    print(f"baseline: NDJSON file path, mean of its two runs = {baseline:,.0f} events/s")
    print(f"{'path':<28} {'seconds':>8} {'messages/s':>11} {'vs NDJSON':>10}  result")
    for name, seconds, counts in rows:
        rate = args.messages / seconds
        shown = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        print(f"{name:<28} {seconds:>8.1f} {rate:>11,.0f} {rate / baseline:>9.2f}x  {shown}")


if __name__ == "__main__":
    main()
