"""The layers import only downwards (ARCHITECTURE §3, issue 14), read from the source: every import of every
module under wnb/ (ast: imports inside functions and `if TYPE_CHECKING:` blocks count too). No exceptions
list: each offending import is named with its file and line."""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import sqlalchemy
from sqlalchemy.sql.expression import FromClause

import wnb

ROOT = Path(wnb.__file__).parent
FACES = ("wnb.api", "wnb.web", "wnb.cli")
# What the pure core may not import: the other layers, the settings and metrics, the clock, the environment,
# logging, and the database, network, process and rules-engine libraries.
CORE_MAY_NOT_IMPORT = (
    *("wnb.store", "wnb.service", "wnb.matcher", "wnb.ingest", "wnb.notify", "wnb.fhir", *FACES),
    *("wnb.settings", "wnb.metrics", "wnb.logs", "wnb.pipes"),
    *("sqlalchemy", "sqlmodel", "psycopg", "socket", "httpx", "urllib.request", "smtplib", "durable"),
    *("subprocess", "fastapi", "uvicorn", "apscheduler", "time", "os", "logging", "structlog"),
)
# A face holds an engine or a connection to hand to the store's query modules, and may catch the database's
# errors; it builds no statement and names no table.
FACE_MAY_TAKE_FROM_SQLALCHEMY = frozenset({"Engine", "Connection"})
TABLES = "wnb.store.tables"  # importing it is an offence of its own
CLOCK_CALLS = {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today")}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    path: Path
    line: int
    target: str  # the module imported from
    names: tuple[str, ...]  # the names taken from it (empty: `import target`)

    def __str__(self) -> str:
        taken = f" ({', '.join(self.names)})" if self.names else ""
        return f"{self.path.relative_to(ROOT.parent)}:{self.line}: {self.module} imports {self.target}{taken}"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _trees() -> dict[str, tuple[Path, ast.Module]]:
    return {_module_name(path): (path, ast.parse(path.read_text(encoding="utf-8"))) for path in ROOT.rglob("*.py")}


def _imports() -> Iterator[Import]:
    for module, (path, tree) in _trees().items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield Import(module, path, node.lineno, alias.name, ())
            elif isinstance(node, ast.ImportFrom):
                target = node.module or ""
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join([*base, *([target] if target else [])])
                yield Import(module, path, node.lineno, target, tuple(alias.name for alias in node.names))


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def _reaches(item: Import, prefixes: tuple[str, ...]) -> bool:
    """The import names one of `prefixes`: as its module, or as a submodule taken from a package."""
    return _within(item.target, prefixes) or any(_within(f"{item.target}.{name}", prefixes) for name in item.names)


def _is_table(value: object) -> bool:
    """A table, or a SQLModel table class."""
    return isinstance(value, FromClause) or isinstance(getattr(value, "__table__", None), sqlalchemy.Table)


def _store_tables_named(module: str, tree: ast.Module) -> Iterator[tuple[int, str]]:
    """Tables a module reaches through a store module: `from wnb.store.repo import events`, or `repo.events`."""
    aliases: dict[str, str] = {}  # local name -> store module
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _within(alias.name, ("wnb.store",)) and alias.asname:
                    aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom) and _within(node.module or "", ("wnb.store",)) and node.module != TABLES:
            for alias in node.names:
                source = importlib.import_module(node.module or "")
                value = getattr(source, alias.name, None)
                if value is None:  # a submodule not imported by its package yet
                    value = importlib.import_module(f"{node.module}.{alias.name}")
                if isinstance(value, type(importlib)):
                    aliases[alias.asname or alias.name] = value.__name__
                elif _is_table(value):
                    yield node.lineno, f"{node.module}.{alias.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            store_module = importlib.import_module(aliases[node.value.id])
            if _is_table(getattr(store_module, node.attr, None)):
                yield node.lineno, f"{aliases[node.value.id]}.{node.attr}"


def test_the_core_imports_no_other_layer_nor_the_clock_network_or_database() -> None:
    offences = [
        str(item) for item in _imports() if _within(item.module, ("wnb.core",)) and _reaches(item, CORE_MAY_NOT_IMPORT)
    ]
    assert not offences, "the core is pure (wnb/core):\n" + "\n".join(offences)


def test_the_core_never_reads_the_clock() -> None:
    offences = []
    for module, (path, tree) in _trees().items():
        if not _within(module, ("wnb.core",)):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                owner_name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
                if (owner_name, node.func.attr) in CLOCK_CALLS:
                    offences.append(f"{path.relative_to(ROOT.parent)}:{node.lineno}: {owner_name}.{node.func.attr}()")
    assert not offences, "the core takes `now` as an argument:\n" + "\n".join(offences)


def test_ingest_does_not_import_the_service() -> None:
    offences = [
        str(item) for item in _imports() if _within(item.module, ("wnb.ingest",)) and _reaches(item, ("wnb.service",))
    ]
    assert not offences, "the listeners take anything that ingests (wnb.ingest.ingests):\n" + "\n".join(offences)


def test_the_store_imports_nothing_above_it() -> None:
    above = ("wnb.service", "wnb.notify", "wnb.ingest", "wnb.matcher", *FACES)
    offences = [str(item) for item in _imports() if _within(item.module, ("wnb.store",)) and _reaches(item, above)]
    assert not offences, "the store sits below the service, delivery, ingest and the faces:\n" + "\n".join(offences)


def test_faces_import_no_table_and_build_no_statement() -> None:
    offences = []
    for item in _imports():
        if not _within(item.module, FACES):
            continue
        builds = _within(item.target, ("sqlalchemy",)) and not _within(item.target, ("sqlalchemy.exc",))
        if _reaches(item, (TABLES, "sqlmodel")) or (
            builds and (not item.names or set(item.names) - FACE_MAY_TAKE_FROM_SQLALCHEMY)
        ):
            offences.append(str(item))
    for module, (path, tree) in _trees().items():
        if _within(module, FACES):
            where = path.relative_to(ROOT.parent)
            offences += [
                f"{where}:{line}: {module} uses the table {table}" for line, table in _store_tables_named(module, tree)
            ]
    assert not offences, "faces ask the service or the store's query modules, never tables:\n" + "\n".join(offences)


def test_only_the_rules_adapter_imports_durable() -> None:
    offences = [
        str(item) for item in _imports() if _reaches(item, ("durable",)) and item.module != "wnb.matcher.durable"
    ]
    assert not offences, "durable-rules is imported only by wnb/matcher/durable.py:\n" + "\n".join(offences)
