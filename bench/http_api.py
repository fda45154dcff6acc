"""HTTP benchmark: single-event posts to a real `wnb serve` (SQLite file), driven from a second process.

(Not named http.py: in bench/ that would hide the standard library's `http` package from every script there.)

Prints requests/s and p50/p99 latency beside the same run's figures for a trivial FastAPI endpoint served
the same way (uvicorn in its own process, same client, same connections), so the difference is wnb's own
work: authentication, validation, storage, evaluation and audit. Target: >= 300 events/s with p99 < 100 ms.

    .venv/bin/python bench/http_api.py                   # 20 s per server, 8 connections
    .venv/bin/python bench/http_api.py --seconds 5       # quicker
    .venv/bin/python bench/http_api.py --profile         # also cProfile the wnb server (top functions)

Events come from bench/synthetic.py (a realistic feed with supersessions, duplicates and invalid rows) after
the matching person context was imported, so most posts are stored and evaluated against real history.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent
TARGET_RPS, TARGET_P99_MS = 300, 100


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ---- the trivial baseline server ----


def trivial_server(port: int) -> None:
    """A FastAPI app with one POST endpoint that parses the JSON body and answers; served like wnb."""
    import uvicorn
    from fastapi import FastAPI, Request

    app = FastAPI()

    @app.post("/v1/attendance-events")
    async def accept(request: Request) -> dict[str, Any]:
        body = await request.json()
        return {"status": "accepted", "event_id": body.get("event_id")}

    @app.get("/health/live")
    def live() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="warning")


# ---- the driver (a separate process) ----


async def drive(url: str, key: str, lines: list[str], seconds: float, connections: int) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    statuses: dict[str, int] = {}
    position = 0
    stop = time.perf_counter() + seconds
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal position
        while time.perf_counter() < stop:
            body = lines[position % len(lines)]  # past the end (only the fast baseline gets there): from the top
            position += 1
            started = time.perf_counter()
            answer = await client.post("/v1/attendance-events", content=body, headers=headers)
            latencies.append(time.perf_counter() - started)
            word = str(answer.status_code)
            if answer.status_code == 200:
                word = answer.json().get("status", word) if isinstance(answer.json(), dict) else word
            statuses[word] = statuses.get(word, 0) + 1

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        began = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(connections)))
        elapsed = time.perf_counter() - began
    latencies.sort()

    def pick(fraction: float) -> float:
        return latencies[min(len(latencies) - 1, int(fraction * len(latencies)))] * 1000

    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "driver_cpu_ms": (usage.ru_utime + usage.ru_stime) * 1000 / max(1, len(latencies)),
        "requests": len(latencies),
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": pick(0.50),
        "p99_ms": pick(0.99),
        "max_ms": latencies[-1] * 1000,
        "statuses": statuses,
    }


def driver_main(args: argparse.Namespace) -> None:
    lines = [line for line in Path(args.events_file).read_text().splitlines() if line.strip()]
    result = asyncio.run(drive(args.drive, args.key, lines, args.seconds, args.connections))
    print(json.dumps(result))


def run_driver(url: str, key: str, events: Path, seconds: float, connections: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--drive", url, "--key", key, "--events-file", str(events)]
    command += ["--seconds", str(seconds), "--connections", str(connections)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the driver failed:\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# ---- orchestration ----


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc): what a request costs, whatever the load."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(
    process: subprocess.Popen[bytes], url: str, key: str, events: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """Drive the server at `url` and add its CPU milliseconds per request to the figures."""
    before = cpu_seconds(process.pid)
    figures = run_driver(url, key, events, args.seconds, args.connections)
    figures["cpu_ms"] = (cpu_seconds(process.pid) - before) * 1000 / max(1, figures["requests"])
    return figures


def wait_live(url: str, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode} before answering")
        try:
            if httpx.get(f"{url}/health/live", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("the server did not answer /health/live in time")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def prepare(work: Path, events: int) -> tuple[dict[str, str], Path, str]:
    """A fresh SQLite database with the synthetic context imported, an API key, and the events to post."""
    sys.path.insert(0, str(ROOT))
    from bench.synthetic import generate
    from wnb.database import open_database
    from wnb.store.accounts import create_api_key

    data = work / "data"
    generate(events=events, children=max(500, events // 6), seed=7, out=data, progress=False)
    env = {key: value for key, value in os.environ.items() if not key.startswith("WNB_")}
    env.update(WNB_DATABASE_URL=f"sqlite:///{work / 'wnb.db'}", WNB_RULES_DIR=str(ROOT / "rules" / "default"))
    env.update(WNB_LOG_LEVEL="INFO")  # as in service: one JSON line per request
    subprocess.run(
        [str(BIN / "wnb"), "context", "import", str(data / "context.ndjson")], env=env, check=True, capture_output=True
    )
    db = open_database(env["WNB_DATABASE_URL"])
    key = create_api_key(db, "clinic-system", "bench-pas", sources=("pas", "community-ehr"))
    db.dispose()
    return env, data / "events.ndjson", key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20, help="how long to drive each server")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections of the driver")
    parser.add_argument("--events", type=int, default=20_000, help="synthetic events to post (wnb must not run out)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run the wnb server under cProfile (its event-loop thread only: handlers on worker threads are not seen); print top 25",
    )
    parser.add_argument("--drive", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--events-file", help=argparse.SUPPRESS)
    parser.add_argument("--trivial-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.trivial_server:
        return trivial_server(args.trivial_server)
    if args.drive:
        return driver_main(args)

    with tempfile.TemporaryDirectory(prefix="wnb-bench-http-") as folder:
        work = Path(folder)
        print(f"preparing {args.events} synthetic events and their context ...", file=sys.stderr)
        env, events, key = prepare(work, args.events)

        port = free_port()
        baseline = subprocess.Popen(
            [sys.executable, __file__, "--trivial-server", str(port)], stderr=subprocess.DEVNULL
        )
        try:
            wait_live(f"http://127.0.0.1:{port}", baseline)
            print("driving the trivial FastAPI endpoint ...", file=sys.stderr)
            trivial = measured(baseline, f"http://127.0.0.1:{port}", key, events, args)
        finally:
            stop(baseline)

        port = free_port()
        serve = [str(BIN / "wnb"), "serve", "--port", str(port), "--sweep-minutes", "60"]
        profile_file = work / "serve.prof"
        if args.profile:
            serve = [sys.executable, "-m", "cProfile", "-o", str(profile_file), "-m", "wnb", *serve[1:]]
        log_file = work / "serve.log"
        with log_file.open("wb") as log:
            server = subprocess.Popen(serve, env=env, stderr=log, cwd=work)
            try:
                wait_live(f"http://127.0.0.1:{port}", server)
                print("driving wnb serve ...", file=sys.stderr)
                real = measured(server, f"http://127.0.0.1:{port}", key, events, args)
            finally:
                stop(server)

        report(real, trivial, args)
        if args.profile and profile_file.exists():
            import pstats

            print("\nwnb serve, cProfile, top 25 by cumulative time:")
            pstats.Stats(str(profile_file)).sort_stats("cumulative").print_stats(25)


def report(real: dict[str, Any], trivial: dict[str, Any], args: argparse.Namespace) -> None:
    print(
        f"\nsingle-event POST /v1/attendance-events, {args.connections} connections, {args.seconds:g} s each,"
        f" driver in its own process, servers: uvicorn on loopback"
    )
    print(f"{'':28} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'server CPU ms/req':>18}")
    for name, figures in (("trivial FastAPI endpoint", trivial), ("wnb serve (SQLite file)", real)):
        print(
            f"{name:28} {figures['requests']:>9} {figures['rps']:>8.0f} {figures['p50_ms']:>8.1f}"
            f" {figures['p99_ms']:>8.1f} {figures['max_ms']:>8.1f} {figures['cpu_ms']:>18.2f}"
        )
    print(
        f"driver CPU ms per request: {trivial['driver_cpu_ms']:.2f} (trivial), {real['driver_cpu_ms']:.2f} (wnb);"
        " the driver shares the machine's two cores with the server"
    )
    print(
        f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        " (CPU ms per request does not depend on it; rates and latencies do)"
    )
    print(f"wnb answers: {', '.join(f'{n} {word}' for word, n in sorted(real['statuses'].items()))}")
    met = real["rps"] >= TARGET_RPS and real["p99_ms"] < TARGET_P99_MS
    print(
        f"target >= {TARGET_RPS} events/s with p99 < {TARGET_P99_MS} ms: {'met' if met else 'MISSED'}"
        f" (wnb at {real['rps'] / trivial['rps']:.0%} of the trivial endpoint's rate)"
    )


if __name__ == "__main__":
    main()
