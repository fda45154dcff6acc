"""The durable-rules adapter: the only module that imports `durable` (see shared DURABLE_RULES.md).

The one safe shape: a host without background threads, ruleset names carrying the version hash, one fact
document with an `id` and every field typed, a fresh random session per evaluation deleted in `finally`,
one process-wide lock, and the swallowed-exception slot checked after every call.
"""

from __future__ import annotations

import copy
import threading
import uuid
import warnings
from typing import Any

from wnb.core.errors import EngineError
from wnb.core.ruleset import FACTS_ID, Ruleset, compile_rules

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from durable import engine as _durable  # type: ignore[import-untyped]  # durable ships no type hints

_LOCK = threading.Lock()


class _QuietHost(_durable.Host):  # type: ignore[misc]  # durable ships no type hints
    """A host whose actions only record which rule fired; no dispatch threads (they crash delete_state)."""

    def __init__(self) -> None:
        self.fired: list[str] = []
        super().__init__()

    def _run(self) -> None:
        """No timer or dispatch threads: wnb keeps all time and state in Python and the database."""

    def get_action(self, action_name: str) -> Any:
        def record(c: Any) -> None:  # one parameter only: two would make the action asynchronous
            self.fired.append(action_name)

        return record


_HOST: _QuietHost | None = None
_REGISTERED: set[str] = set()


def _host() -> _QuietHost:
    global _HOST
    if _HOST is None:
        _HOST = _QuietHost()
    return _HOST


def _check_document(facts: dict[str, Any]) -> None:
    for name, value in facts.items():
        if value is None:
            raise EngineError(f"fact {name} is null; the matcher never matches nulls, so send a typed value")


def ruleset_name(ruleset: Ruleset) -> str:
    return f"wnb_{ruleset.version[:32]}"


def register(ruleset: Ruleset) -> str:
    """Register the ruleset once per process (a name cannot be registered twice); return its name."""
    name = ruleset_name(ruleset)
    with _LOCK:
        if name not in _REGISTERED:
            _host().set_rulesets({name: copy.deepcopy(compile_rules(ruleset))})
            _REGISTERED.add(name)
    return name


def evaluate(ruleset: Ruleset, facts: dict[str, Any]) -> list[str]:
    """The ids of the rules whose conditions hold for one fact document, in rule order."""
    _check_document(facts)
    name = register(ruleset)
    document = {**facts, "id": FACTS_ID, "sid": uuid.uuid4().hex}
    host = _host()
    with _LOCK:
        host.fired = []
        try:
            state = host.assert_fact(name, document)
        except Exception as error:  # the C engine's own errors
            raise EngineError(f"rule matcher failed: {error}") from error
        finally:
            host.delete_state(name, document["sid"])
        if state and state.get("exception"):
            raise EngineError(f"rule matcher failed: {state['exception']}")
        fired = set(host.fired)
    return [rule.id for rule in ruleset.rules if rule.id in fired]
