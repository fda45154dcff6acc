"""The rules of a chunk's evaluations, run in a second process while this one applies their outcomes.

Running the rules (durable-rules, the interpreter's cross-check and the per-condition explanation) is a pure
function of one fact document, and the facts of a chunk's evaluations depend only on the events stored
before them, not on what earlier evaluations raised. So `Service` works out every fact document of a chunk
first, sends them here in one message, and applies the outcomes in order as they come back, while this
process works on the next ones. The outcomes are the very values `rules_outcome` gives in-process, so what is
stored does not change. Should the process fail or die, taking an outcome raises EngineError and the chunk's
transaction rolls back, as when the matcher fails in-process.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from typing import IO, Any

from wnb import pipes
from wnb.core.errors import EngineError
from wnb.core.interpreter import explain, fired_by_interpreter
from wnb.core.ruleset import Ruleset
from wnb.matcher import durable

Outcome = tuple[list[str], list[dict[str, Any]]]


def rules_outcome(ruleset: Ruleset, facts: dict[str, Any]) -> Outcome:
    """The rules that fire, by the matcher, checked against the interpreter; and their explanations."""
    fired = durable.evaluate(ruleset, facts)
    by_interpreter = fired_by_interpreter(ruleset, facts)
    if fired != by_interpreter:
        raise EngineError(f"the rule matcher fired {fired} but the interpreter {by_interpreter}; evaluation refused")
    return fired, [item.as_dict() for item in explain(ruleset, facts, only=fired)]


class MatcherStopped(EngineError):
    """The matcher process died or was stopped: the pipe to it broke."""


class MatcherProcess:
    """A process that runs one ruleset's rules over the fact documents it is sent, in order."""

    def __init__(self, ruleset: Ruleset) -> None:
        self._process = pipes.start("wnb.matcher.process", stdin=subprocess.PIPE)
        assert self._process.stdin is not None and self._process.stdout is not None
        self._in: IO[bytes] = self._process.stdin
        self._out: IO[bytes] = self._process.stdout
        self._owed = 0  # outcomes sent for and not yet taken
        self._call(lambda: pipes.send(self._in, ruleset))

    @property
    def pid(self) -> int:
        return self._process.pid

    def outcomes(self, documents: list[dict[str, Any]]) -> Iterator[Outcome]:
        """Each document's outcome, in order; the documents go to the process at once, outcomes come one by one.

        Take every outcome before sending more documents (a generator left half-taken means the caller
        failed: close() the process then).
        """
        if self._owed:
            raise EngineError("the rule matcher process still owes outcomes of an earlier chunk")
        if not documents:
            return
        self._call(lambda: pipes.send(self._in, documents))
        self._owed = len(documents)
        for _ in documents:
            kind, value = self._call(lambda: pipes.receive(self._out))
            self._owed -= 1
            if kind == "error":
                raise EngineError(value)
            yield value

    def _call(self, step: Any) -> Any:
        try:
            return step()
        except (OSError, EOFError) as error:  # the pipe broke: the process died or was stopped
            self.close()
            raise MatcherStopped(
                f"the rule matcher process stopped (exit {self._process.returncode}); the chunk is not stored"
            ) from error

    @property
    def broken(self) -> bool:
        """True once it failed, was closed, or still owes outcomes nobody will take."""
        return self._owed > 0 or self._process.poll() is not None

    def close(self) -> None:
        """End the process."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        for pipe in (self._in, self._out):
            with contextlib.suppress(OSError):  # what was left unsent has nobody to go to
                pipe.close()


class RulesBeside:
    """A MatcherProcess for a long ingest, started when first asked and started again after a failure."""

    def __init__(self, ruleset: Ruleset) -> None:
        self.ruleset = ruleset
        self.process: MatcherProcess | None = None

    def outcomes(self, documents: list[dict[str, Any]]) -> Iterator[Outcome]:
        """Each document's outcome, in order. A process found dead before it gave the first one (it died
        between chunks, and nothing of this chunk has used it yet) is replaced, and asked again, once."""
        for attempt in (1, 2):
            answers = self._process().outcomes(documents)
            try:
                first = next(answers, None)
            except MatcherStopped:
                if attempt == 2:
                    raise
                continue
            if first is not None:
                yield first
                yield from answers
            return

    def _process(self) -> MatcherProcess:
        if self.process is not None and self.process.broken:  # it died, or a chunk failed half-way: afresh
            self.process.close()
            self.process = None
        if self.process is None:
            self.process = MatcherProcess(self.ruleset)
        return self.process

    def close(self) -> None:
        if self.process is not None:
            self.process.close()
            self.process = None


def serve(source: IO[bytes], out: IO[bytes]) -> None:
    """The matcher process: a ruleset, then lists of fact documents, each answered outcome by outcome."""
    ruleset: Ruleset = pipes.receive(source)
    while True:
        try:
            documents = pipes.receive(source)
        except EOFError:
            return
        for facts in documents:
            try:
                pipes.send(out, ("ok", rules_outcome(ruleset, facts)))
            except EngineError as error:
                pipes.send(out, ("error", str(error)))


if __name__ == "__main__":
    pipes.helper_main(lambda out: serve(sys.stdin.buffer, out))
