"""Ingestion: a stream of items read in chunks, each chunk checked, stored and evaluated in one transaction, and
the one-item and batch entry points the API and the listeners use.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from itertools import islice

import structlog
from sqlalchemy import Connection

from wnb import metrics
from wnb.core import policy
from wnb.core.domain import AttendanceEvent
from wnb.core.errors import Forbidden, InvalidEvent
from wnb.core.facts import sets_off_a_rule
from wnb.core.items import CheckedItem, RawItem, check, raw_item
from wnb.core.policy import Principal
from wnb.matcher.process import RulesBeside
from wnb.service.base import _is_outage, _Line, _within_binding, _writer
from wnb.service.storing import Storing
from wnb.store import concurrency, repo
from wnb.store.audit import AuditLog
from wnb.store.db import checkpoints_beside
from wnb.store.items import ChunkItems
from wnb.store.pending import PendingRows
from wnb.store.people import ChunkPeople
from wnb.store.sql import JsonText

log = structlog.get_logger("wnb")


class Ingesting(Storing):
    """The ingest entry points: a stream in chunks, one item, one item explained, a batch explained."""

    def ingest(
        self,
        items: Iterable[RawItem | CheckedItem],
        origin: str,
        actor: str = "engine",
        chunk: int = 1000,
        progress: Callable[[int], None] | None = None,
        by: Principal | None = None,
    ) -> Counter[str]:
        """Store and evaluate every item; count accepted, superseded, stale, duplicate and rejected.

        Items may come checked already (wnb/ingest/ahead.py validates a file's lines in another process).
        `by` (default: wnb itself as `actor`) must be allowed to ingest; a key's items for a source it is not
        bound to are rejected.
        """
        principal = _writer(by, actor)
        actor = principal.actor
        counts: Counter[str] = Counter()
        iterator = iter(items)
        if principal.kind == policy.Kind.CLIENT:
            iterator = (_within_binding(principal, i) if isinstance(i, RawItem) else i for i in iterator)
        # From the second chunk on (a long ingest), the rules run in a second process (wnb/matcher/process.py).
        self.rules_beside = RulesBeside(self.ruleset)
        try:
            with checkpoints_beside(self.db):  # SQLite: the WAL is copied to the database file by another thread
                first = True
                while True:
                    batch = list(islice(iterator, chunk))
                    if batch:
                        with self._in_force() as ruleset:  # one version for the whole chunk
                            if self.rules_beside.ruleset.version != ruleset.version:  # activated meanwhile
                                self.rules_beside.close()
                                self.rules_beside = RulesBeside(ruleset)
                            rules = None if first else self.rules_beside
                            for status, _ in self._ingest_chunk_or_each(batch, origin, actor, rules):
                                counts[status] += 1
                        first = False
                        if progress:
                            progress(len(batch))
                    if len(batch) < chunk:
                        break
        finally:
            self.rules_beside.close()
        log.info("feed_ingested", origin=origin, **counts)
        metrics.count_ingested(origin, counts)
        return counts

    def _ingest_chunk_or_each(
        self, batch: list[RawItem | CheckedItem], origin: str, actor: str, rules: RulesBeside | None
    ) -> list[tuple[str, InvalidEvent | None]]:
        """A chunk in one transaction; should that fail, each item in its own, so one item never stops a file."""
        try:
            return self._ingest_chunk(batch, origin, actor, rules)
        except Exception as error:
            if _is_outage(error):
                raise
            log.warning("chunk_retried_item_by_item", origin=origin, items=len(batch), error=type(error).__name__)
            return [self.ingest_one_or_reject(raw_item(item), origin, actor) for item in batch]

    def ingest_one_or_reject(
        self, item: RawItem, origin: str, actor: str = "engine", by: Principal | None = None
    ) -> tuple[str, InvalidEvent | None]:
        """One item in its own transaction; if it cannot be stored, its reject saying so (unless the database
        is away: then nothing was stored and the caller is told, to send it again; or `by` may not ingest)."""
        try:
            return self.ingest_one_explained(item, origin, actor, by)
        except Forbidden:
            raise
        except Exception as error:
            if _is_outage(error):
                raise
            log.error("item_not_stored", origin=origin, line=item.line, error=type(error).__name__)
            problem = InvalidEvent("event", f"wnb could not store this item ({type(error).__name__}); it is kept here")
            return self.ingest_one_explained(RawItem(item.line, item.text, problem), origin, actor, by)

    @concurrency.retried("ingest")  # replicas: run again from the start when it lost a race
    def _ingest_chunk(
        self, batch: list[RawItem | CheckedItem], origin: str, actor: str, rules: RulesBeside | None = None
    ) -> list[tuple[str, InvalidEvent | None]]:
        with self._transaction() as (connection, audit):
            return self._ingest_batch(connection, audit, batch, origin, actor, rules)

    def ingest_one(self, item: RawItem, origin: str, actor: str = "engine", by: Principal | None = None) -> str:
        return self.ingest_one_explained(item, origin, actor, by)[0]

    @concurrency.retried("ingest")  # replicas: run again from the start when it lost a race
    def ingest_one_explained(
        self, item: RawItem, origin: str, actor: str = "engine", by: Principal | None = None
    ) -> tuple[str, InvalidEvent | None]:
        """One item in its own transaction: its status and, when rejected, why (NotBound: the key's binding).

        `by` (default: wnb itself as `actor`) must be allowed to ingest (Forbidden otherwise).
        """
        principal = _writer(by, actor)
        item = _within_binding(principal, item)
        with self._transaction() as (connection, audit):
            status, problem = self._ingest_batch(connection, audit, [item], origin, principal.actor)[0]
            self._audit_admin_writes(audit, principal, [item], origin)
        metrics.count_ingested(origin, Counter([status]))
        return status, problem

    def ingest_many_explained(
        self, items: list[RawItem], origin: str, actor: str = "engine", by: Principal | None = None
    ) -> list[tuple[str, InvalidEvent | None]]:
        """Items of one API batch in one transaction: each one's status and, when rejected, why.

        Should the shared transaction fail, each item is tried again in its own: every item is answered, one that
        cannot be stored as its reject (`ingest_one_or_reject`); only the database being away raises.
        """
        principal = _writer(by, actor)
        items = [_within_binding(principal, item) for item in items]
        try:
            with self._transaction() as (connection, audit):
                results = self._ingest_batch(connection, audit, items, origin, principal.actor)
                self._audit_admin_writes(audit, principal, items, origin)
        except Exception as error:
            if _is_outage(error):
                raise
            log.warning("batch_retried_item_by_item", origin=origin, items=len(items), error=type(error).__name__)
            return [self.ingest_one_or_reject(item, origin, actor, by) for item in items]
        metrics.count_ingested(origin, Counter(status for status, _ in results))
        return results

    def _audit_admin_writes(self, audit: AuditLog, principal: Principal, items: list[RawItem], origin: str) -> None:
        """An administrator (key or person) writing for sources is on the record: which sources, how many items."""
        if principal.kind == policy.Kind.SYSTEM or not principal.is_admin:
            return
        sources = Counter(str(i.data.get("source")) for i in items if isinstance(i.data, dict) and i.data.get("source"))
        if sources:
            audit.append(
                self.clock(),
                principal.actor,
                "admin_posted_for_source",
                sorted(sources),
                {"origin": origin, "items": dict(sorted(sources.items()))},
            )

    def _ingest_batch(
        self,
        connection: Connection,
        audit: AuditLog,
        batch: Sequence[RawItem | CheckedItem],
        origin: str,
        actor: str,
        rules: RulesBeside | None = None,
    ) -> list[tuple[str, InvalidEvent | None]]:
        """Each item's status (and reason when rejected), in order; stored events looked up once per batch.

        Two passes. The first stores each event (its id, what it supersedes, the chunk's view of its person)
        and works out each evaluation's fact document: facts depend only on the events stored before, never
        on what earlier evaluations raised. The second, in the same order, records and applies everything
        else: rejects, stale events, corrections, follow-ups, and each evaluation's rules and effects. The
        rules run here, or in `rules`' process while this one applies the outcomes as they come back.
        """
        checked = [item if isinstance(item, CheckedItem) else check(item) for item in batch]
        events = [item.event for item in checked if isinstance(item.event, AttendanceEvent)]
        # Replicas: nobody else evaluates these people until this transaction ends (PostgreSQL only).
        concurrency.lock_people(connection, {event.nhs_number for event in events})
        seen = repo.existing_event_keys(connection, {(e.source, e.event_id) for e in events})
        appointments = {(e.source, e.appointment_id) for e in events}
        current = repo.current_outcomes(connection, appointments)
        follow_ups = repo.follow_ups_of(connection, appointments)  # kept up to date by _track_follow_up
        # Everyone an event of this chunk may evaluate (its outcome sets off a rule trigger), read at once;
        # the chunk's events, flags, tasks and links are written together at its end.
        evaluated = {e.nhs_number for e in events if sets_off_a_rule(e.attendance, e.outcome)}
        people = ChunkPeople(connection, evaluated, self.ruleset.settings.discharge_review.review_task)
        pending = PendingRows(connection)
        items = ChunkItems(connection, pending, evaluated)
        lines: list[_Line] = []
        for item in checked:
            received_at = self.clock()
            event = item.event
            if isinstance(event, InvalidEvent):
                lines.append(_Line(item, received_at, "rejected"))
            elif (event.source, event.event_id) in seen:
                lines.append(_Line(item, received_at, "duplicate"))
            else:
                assert item.raw is not None
                seen.add((event.source, event.event_id))
                lines.append(self._store(pending, people, item, event, JsonText(item.raw), received_at, current))
        documents = [line.facts for line in lines if line.facts is not None]
        outcomes = rules.outcomes(documents) if rules is not None else map(self.run_rules, documents)
        statuses = [
            self._apply_line(connection, audit, pending, items, follow_ups, outcomes, line, origin, actor)
            for line in lines
        ]
        pending.flush(hold=True)  # before the chain's lock: all but the links, which wait for their numbers
        audit.after_chain(pending.flush_last)
        return statuses
