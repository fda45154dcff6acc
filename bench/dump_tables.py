#!/usr/bin/env python
"""Every table of a wnb SQLite file as text, so two versions of wnb can be shown to store the same bytes.

    .venv/bin/python bench/dump_tables.py ingest run.db --data bench/out   # the bench year, on a fixed clock
    .venv/bin/python bench/dump_tables.py dump run.db > run.tables          # every row of every table
    .venv/bin/python bench/dump_tables.py diff before.db after.db          # the same, streamed: rows per
                                                                           # table, first difference, exit 1
    .venv/bin/python bench/dump_tables.py scenarios DIR                    # each scenario file into DIR/<name>.db
    .venv/bin/python bench/dump_tables.py sweep year.db --at 2026-06-01T09:00:00+00:00 --into swept.db
    .venv/bin/python bench/dump_tables.py data DIR [--quick]               # the bench's synthetic year (seed 1)
    .venv/bin/python bench/dump_tables.py all OUT --data-quick DQ --data-year DY   # every dump below, in one go
    .venv/bin/python bench/dump_tables.py diff BEFORE_DIR AFTER_DIR        # every *.db of two folders, by name

Which wnb runs: WNB_CODE=<a checkout> (else the first PYTHONPATH entry holding a wnb package, else the checkout
this script is in). The script puts that checkout first on sys.path and drops the editable install's import
hook: with the hook, a module the checkout lacks (say wnb.core.ruleset in a checkout of the old layout) would
be loaded from the installed checkout instead, mixing two versions in one run. It also works in that
checkout (its helper processes, started with `python -m`, put the working directory first on their path),
and refuses to go on if any wnb module it loaded came from elsewhere.

Every run has the same settings: WNB_AUDIT_KEY is AUDIT_KEY below (so the audit MACs are the same in every
run), WNB_NOTIFY is NOTIFY below (so `sweep` queues its escalation e-mails in the outbox), and every other
WNB_* variable of the environment is dropped, all before wnb is imported.

`ingest` does what bench/ingest.py's real run does (Service.import_context over OUT/context.ndjson, then
Service.ingest over OUT/events.ndjson read as `wnb ingest` reads it, default chunk) into a fresh SQLite file, but
with a clock that starts at a fixed instant and moves 1 ms each time it is read: the real clock would put
different receive times, and so different audit hashes, in every run.

`scenarios` runs each scenario file of the ruleset (RULES/scenarios/*.yaml, what `wnb rules test` runs) with
the scenario runner itself (run_scenario, one ruleset for all of them, its own step clock) into DIR/<file
name>.db instead of a temporary file, and keeps the file. `sweep` copies a database (SQLite's backup API) and
runs `wnb sweep --now AT` on the copy: the command itself, through its typer app, with WNB_DATABASE_URL and
WNB_RULES_DIR naming the copy and the ruleset.

`dump` reads the file with the sqlite3 module only (no wnb code): its schema (sqlite_master), then each table
by name, each row in rowid order, as the repr of the values SQLite holds, so a changed type, digit or byte
shows. `diff` compares two files, or every *.db of two folders (paired by path; a file on one side only
differs).

Issue 14 (modules into packages, no behaviour change): the before set, made with the old code, and the after
set, made with the new one on the same data, must be identical.

    PY=/work/main/.venv/bin/python; DUMP=bench/dump_tables.py
    WNB_CODE=/work/baseline $PY $DUMP data /work/dumps/data-quick --quick   # once: the inputs, kept
    WNB_CODE=/work/baseline $PY $DUMP data /work/dumps/data-year
    WNB_CODE=/work/baseline $PY $DUMP all /work/dumps/before --data-quick /work/dumps/data-quick \\
        --data-year /work/dumps/data-year                                    # old code (~20 min on 2 cores)
    WNB_CODE=/work/main $PY $DUMP all /work/dumps/after --data-quick /work/dumps/data-quick \\
        --data-year /work/dumps/data-year                                    # new code
    $PY $DUMP diff /work/dumps/before /work/dumps/after                      # exit 0: identical

`all` makes OUT/quick.db, OUT/scenarios/*.db, OUT/year.db and OUT/year-sweep-<instant>.db for each --at
(default SWEEPS), each part in a fresh process of this script, and writes OUT/MANIFEST.txt (which code, its
commit, each part's time and output); `--parts quick,scenarios` makes only those.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# ---- the settings of every run, and which wnb: all before wnb is imported ---------------------------------

AUDIT_KEY = "dump:" + "0123456789abcdef" * 4  # ID:SECRET, as tests/conftest.py's TEST_AUDIT_KEY
NOTIFY = "safeguarding-lead=lead@example.org,named-nurse=nurse@example.org,clinician=clinic@example.org"
FIXED_ENV = {"WNB_AUDIT_KEY": AUDIT_KEY, "WNB_NOTIFY": NOTIFY}


def _code_checkout() -> Path:
    named = os.environ.get("WNB_CODE")
    if named:
        return Path(named).resolve()
    for entry in filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep)):
        if (Path(entry) / "wnb" / "__init__.py").is_file():
            return Path(entry).resolve()
    return REPO


# Every run uses the same string hash seed, so that nothing wnb orders by a set of strings differs by chance.
if os.environ.get("PYTHONHASHSEED") != "0":
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"})

CODE = _code_checkout()
if not (CODE / "wnb" / "__init__.py").is_file():
    raise SystemExit(f"WNB_CODE {CODE}: no wnb package there")
_dropped = sorted(name for name in os.environ if name.upper().startswith("WNB_") and name != "WNB_CODE")
for _name in _dropped:
    del os.environ[_name]
os.environ.update(FIXED_ENV, WNB_CODE=str(CODE))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CODE), os.environ.get("PYTHONPATH")]))
sys.meta_path[:] = [finder for finder in sys.meta_path if "__editable__" not in getattr(finder, "__module__", "")]
sys.path.insert(0, str(CODE))

import argparse  # noqa: E402
import importlib  # noqa: E402
import resource  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import closing, redirect_stdout  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from itertools import zip_longest  # noqa: E402
from types import ModuleType  # noqa: E402

START = datetime(2026, 3, 1, tzinfo=UTC)
# The synthetic year's appointments run 1 Apr 2025 – 31 Mar 2026 (bench/synthetic.py); `ingest` receives them
# from START on. One sweep inside the year, one just after its last appointments, one months later.
SWEEPS = ("2025-10-15T09:00:00+00:00", "2026-04-01T08:00:00+00:00", "2026-09-15T17:30:00+00:00")
QUICK = {"events": 20_000, "children": 3_500}  # bench/ingest.py --quick
YEAR = {"events": 300_000, "children": 50_000}  # bench/ingest.py
SEED = 1

# ---- wnb's modules: the new layout (issue 14) first, then the old one ------------------------------------

MODULES = {
    "service": ("wnb.service",),  # Service, utc_now
    "ruleset": ("wnb.rule_files", "wnb.ruleset"),  # load_ruleset
    "scenarios": ("wnb.service.scenarios", "wnb.scenarios"),
    "db": ("wnb.database", "wnb.store.db"),  # open_database
    "ingest": ("wnb.ingest",),
    "ndjson": ("wnb.ingest.ndjson",),
    "ahead": ("wnb.ingest.ahead", None),  # None: an older wnb without it reads with wnb.ingest.read_file
    "cli": ("wnb.cli.main", "wnb.cli"),  # the Typer app
}


def wnb(name: str) -> ModuleType | None:
    """One of MODULES, from the first of its paths this wnb has; a module missing further down is an error."""
    for path in MODULES[name]:
        if path is None:
            return None
        try:
            return importlib.import_module(path)
        except ModuleNotFoundError as error:  # only the path itself (or its package) missing means "older wnb"
            if error.name is None or not (path == error.name or path.startswith(error.name + ".")):
                raise
    raise ModuleNotFoundError(f"none of {', '.join(filter(None, MODULES[name]))} in {CODE}")


def check_code() -> None:
    """Refuse to report on a run that loaded any wnb module from somewhere other than CODE."""
    package = CODE / "wnb"
    strays = sorted(
        name
        for name, module in list(sys.modules.items())
        if (name == "wnb" or name.startswith("wnb."))
        and getattr(module, "__file__", None)
        and not Path(module.__file__).resolve().is_relative_to(package)
    )
    if strays:
        raise SystemExit(f"wnb modules loaded from outside {package}: {', '.join(strays)}")


# ---- making databases --------------------------------------------------------------------------------------


class TickingClock:
    """Starts at START and moves 1 ms every time it is read: the same times in every run of the same feed."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


def remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def ingest(database: Path, data: Path, rules: Path) -> None:
    read_file, read_ndjson = wnb("ingest").read_file, wnb("ndjson").read
    ahead = wnb("ahead")  # as `wnb ingest` reads a file: a large one's lines checked by a second process
    read_events = ahead.read_checked if ahead else read_file
    remove_database(database)
    engine = wnb("db").open_database(f"sqlite:///{database}")
    service = wnb("service").Service(engine, wnb("ruleset").load_ruleset(rules), TickingClock())
    context, events = data / "context.ndjson", data / "events.ndjson"
    started, cpu = time.perf_counter(), time.process_time()
    print(dict(service.import_context(read_ndjson(context), origin=f"context:{context.name}")), file=sys.stderr)
    with closing(read_events(events)) as items:
        print(dict(service.ingest(items, origin=events.name)), file=sys.stderr)
    helpers = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        f"{time.perf_counter() - started:.1f} s wall, {time.process_time() - cpu:.1f} s CPU in this process, "
        f"{helpers.ru_utime + helpers.ru_stime:.1f} s in its helper processes (reader, matcher)",
        file=sys.stderr,
    )
    engine.dispose()


def scenarios(folder: Path, rules: Path) -> int:
    """Each scenario file into folder/<its name>.db, by the scenario runner; 1 if any failed its expectations."""
    runner = wnb("scenarios")
    ruleset = wnb("ruleset").load_ruleset(rules)
    folder.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in runner.scenario_files(rules):
        database = folder / f"{path.stem}.db"
        remove_database(database)
        result = runner.run_scenario(ruleset, path, f"sqlite:///{database}")
        failed += not result.passed
        print(f"{'PASS' if result.passed else 'FAIL'} {path.name}", *result.problems, sep="\n    ", file=sys.stderr)
    return 1 if failed else 0


def copy_database(source: Path, target: Path) -> None:
    remove_database(target)
    with (
        closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as reading,
        closing(sqlite3.connect(target)) as writing,
    ):
        reading.backup(writing)


def sweep(source: Path, at: str, target: Path, rules: Path) -> int:
    """`wnb sweep --now AT` on a copy of `source`, by the command's own code."""
    copy_database(source, target)
    os.environ.update(WNB_DATABASE_URL=f"sqlite:///{target}", WNB_RULES_DIR=str(rules))
    app = wnb("cli").app
    started = time.perf_counter()
    with redirect_stdout(sys.stderr):  # the command's counts line
        code = app(["sweep", "--now", at], prog_name="wnb", standalone_mode=False)
    print(f"{time.perf_counter() - started:.1f} s wall", file=sys.stderr)
    return int(code or 0)


def generate(out: Path, quick: bool) -> None:
    """The bench's synthetic data (bench/synthetic.py of CODE), as bench/ingest.py [--quick] makes it."""
    sys.path.insert(0, str(CODE / "bench"))  # before this script's folder: CODE's generator, for CODE's wnb
    import synthetic

    sizes = QUICK if quick else YEAR
    print(synthetic.generate(sizes["events"], sizes["children"], SEED, out, progress=False), file=sys.stderr)


def stamp(at: str) -> str:
    return datetime.fromisoformat(at).astimezone(UTC).strftime("%Y%m%dT%H%MZ")


def every_dump(out: Path, data_quick: Path, data_year: Path, rules: Path, instants: list[str], parts: set[str]) -> int:
    """Every part in a fresh process of this script (nothing carried from one part to the next)."""
    out.mkdir(parents=True, exist_ok=True)
    me = [sys.executable, str(Path(__file__).resolve())]
    jobs: list[tuple[str, list[str]]] = []
    if "quick" in parts:
        jobs.append(("quick", ["ingest", str(out / "quick.db"), "--data", str(data_quick)]))
    if "scenarios" in parts:
        jobs.append(("scenarios", ["scenarios", str(out / "scenarios")]))
    if "year" in parts:
        jobs.append(("year", ["ingest", str(out / "year.db"), "--data", str(data_year)]))
    if "sweeps" in parts:
        for at in instants:
            target = out / f"year-sweep-{stamp(at)}.db"
            jobs.append((f"sweep {at}", ["sweep", str(out / "year.db"), "--at", at, "--into", str(target)]))
    commit = subprocess.run(["git", "-C", str(CODE), "log", "-1", "--format=%H %s"], capture_output=True, text=True)
    changed = subprocess.run(["git", "-C", str(CODE), "status", "--porcelain"], capture_output=True, text=True)
    manifest = [
        f"code      {CODE}",
        f"commit    {commit.stdout.strip() or commit.stderr.strip()}",
        f"worktree  {'clean' if not changed.stdout.strip() else 'CHANGED: ' + ' '.join(changed.stdout.split())}",
        f"audit key {AUDIT_KEY.split(':')[0]}, notify {NOTIFY}",
        f"data      quick {data_quick}, year {data_year}",
        f"rules     {rules}",
        f"started   {datetime.now(UTC).isoformat(timespec='seconds')}",
    ]
    worst = 0
    for name, arguments in jobs:
        started = time.perf_counter()
        done = subprocess.run([*me, *arguments, "--rules", str(rules)], capture_output=True, text=True)
        seconds = time.perf_counter() - started
        worst = max(worst, done.returncode)
        said = done.stderr.strip().splitlines()
        print(f"[{name}] {seconds:.1f} s, exit {done.returncode}", file=sys.stderr, flush=True)
        manifest.append(f"\n[{name}] {seconds:.1f} s wall, exit {done.returncode}")
        manifest += [f"    {line}" for line in said]
        if done.returncode and name in ("year",):
            manifest.append("    (no sweeps: the year's ingest failed)")
            break
    (out / "MANIFEST.txt").write_text("\n".join(manifest) + "\n")
    return 1 if worst else 0


# ---- reading and comparing them (sqlite3 only, no wnb code) ------------------------------------------------


def _schema_clauses(sql: str | None) -> tuple[str, ...] | None:
    """A CREATE statement as the set of its clauses, sorted: SQLAlchemy writes a table's UNIQUE constraints in
    the order of a set of constraint objects (hashed by identity), so two runs of the same schema may list
    `UNIQUE (name), UNIQUE (prefix)` either way round. Every column, type, default and constraint still shows."""
    if sql is None:
        return None
    return tuple(sorted(clause.strip().rstrip(",") for clause in sql.splitlines()))


def dump(database: Path) -> Iterator[str]:
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        for kind, name, table, sql in connection.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ):
            yield f"sqlite_master\t{(kind, name, table, _schema_clauses(sql))!r}"
        names = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        for name in names:
            for row in connection.execute(f'SELECT * FROM "{name}" ORDER BY rowid'):
                yield f"{name}\t{row!r}"
    finally:
        connection.close()


def diff(first: Path, second: Path, quiet: bool = False) -> int:
    """0 when both files hold the same rows; else 1, after naming the first difference of each table."""
    rows: dict[str, int] = {}
    differing: dict[str, tuple[int, str | None, str | None]] = {}
    missing = None
    for left, right in zip_longest(dump(first), dump(second), fillvalue=missing):
        table = (left or right or "").split("\t", 1)[0]
        rows[table] = rows.get(table, 0) + 1
        if left != right and table not in differing:
            differing[table] = (rows[table], left, right)
    if quiet and not differing:
        print(f"identical  {sum(rows.values()):>9,} rows  {first.name}")
        return 0
    if quiet:
        print(f"DIFFERENT  {first} vs {second}")
    for table, count in rows.items():
        print(f"{table:16} {count:>9,} rows  {'DIFFERENT' if table in differing else 'same'}")
        if table in differing:
            at, left, right = differing[table]
            print(f"    first difference at row {at}:\n    {left}\n    {right}")
    print(f"{len(differing)} table(s) differ" if differing else "identical")
    return 1 if differing else 0


def diff_folders(first: Path, second: Path) -> int:
    """Every *.db under both folders, paired by path; 1 if any pair differs or a file is on one side only."""
    left = {path.relative_to(first) for path in first.rglob("*.db")}
    right = {path.relative_to(second) for path in second.rglob("*.db")}
    differing = 0
    for name in sorted(left | right, key=lambda path: (len(path.parts), str(path))):
        if name not in left or name not in right:
            print(f"ONLY IN {first if name in left else second}: {name}")
            differing += 1
            continue
        differing += diff(first / name, second / name, quiet=True)
    total = len(left | right)
    print(f"{differing} of {total} file(s) differ" if differing else f"all {total} files identical")
    return 1 if differing else 0


def main() -> None:
    rules_default = CODE / "rules" / "default"
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("ingest", help="the bench data into a fresh SQLite file, on a fixed clock")
    run.add_argument("database", type=Path)
    run.add_argument("--data", type=Path, default=Path("bench/out"), help="folder of events.ndjson and context.ndjson")
    tests = commands.add_parser("scenarios", help="each scenario file of the ruleset into DIR/<name>.db")
    tests.add_argument("folder", type=Path)
    swept = commands.add_parser("sweep", help="`wnb sweep --now AT` on a copy of a database")
    swept.add_argument("database", type=Path)
    swept.add_argument("--at", required=True, help="ISO-8601 instant with its offset, as `wnb sweep --now`")
    swept.add_argument("--into", type=Path, help="the copy (default: DATABASE-sweep-<instant>.db beside it)")
    made = commands.add_parser("data", help="the bench's synthetic data (seed 1) into a folder")
    made.add_argument("folder", type=Path)
    made.add_argument("--quick", action="store_true", help="20,000 events, 3,500 children (else the full year)")
    every = commands.add_parser("all", help="quick, scenarios, year and its sweeps into OUT, then MANIFEST.txt")
    every.add_argument("out", type=Path)
    every.add_argument("--data-quick", type=Path, required=True)
    every.add_argument("--data-year", type=Path, required=True)
    every.add_argument("--at", action="append", help=f"a sweep instant, repeatable (default {', '.join(SWEEPS)})")
    every.add_argument("--parts", default="quick,scenarios,year,sweeps", help="which of quick,scenarios,year,sweeps")
    for command in (run, tests, swept, every):
        command.add_argument("--rules", type=Path, default=rules_default, help=f"ruleset (default {rules_default})")
    show = commands.add_parser("dump", help="every row of every table, as text")
    show.add_argument("database", type=Path)
    compare = commands.add_parser("diff", help="compare every row of every table of two files, or two folders")
    compare.add_argument("first", type=Path)
    compare.add_argument("second", type=Path)
    args = parser.parse_args()
    for name, value in vars(args).items():  # before moving to CODE, which the helper processes need
        if isinstance(value, Path):
            setattr(args, name, value.resolve())
    os.chdir(CODE)  # `python -m wnb...` helpers put the working directory first on their path
    if _dropped and args.command not in ("dump", "diff"):
        print(f"dropped from the environment: {', '.join(_dropped)}", file=sys.stderr)
    if args.command in ("ingest", "scenarios", "sweep", "data"):
        print(f"wnb from {CODE}", file=sys.stderr)
    code = 0
    if args.command == "ingest":
        ingest(args.database, args.data, args.rules)
    elif args.command == "scenarios":
        code = scenarios(args.folder, args.rules)
    elif args.command == "sweep":
        target = args.into or args.database.with_name(f"{args.database.stem}-sweep-{stamp(args.at)}.db")
        code = sweep(args.database, args.at, target, args.rules)
    elif args.command == "data":
        generate(args.folder, args.quick)
    elif args.command == "all":
        parts = set(args.parts.split(","))
        code = every_dump(args.out, args.data_quick, args.data_year, args.rules, args.at or list(SWEEPS), parts)
    elif args.command == "diff":
        if args.first.is_dir() and args.second.is_dir():
            sys.exit(diff_folders(args.first, args.second))
        sys.exit(diff(args.first, args.second))
    else:
        for line in dump(args.database):
            sys.stdout.write(line + "\n")
    if args.command in ("ingest", "scenarios", "sweep", "data"):
        check_code()
    sys.exit(code)


if __name__ == "__main__":
    main()
