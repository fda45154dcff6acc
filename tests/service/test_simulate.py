"""`wnb.service.simulate`: a candidate ruleset replayed over stored history, compared with what was raised."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.conftest import DEFAULT_RULES
from tests.factories import event, raw
from wnb import metrics
from wnb.cli.main import app
from wnb.core.domain import Role
from wnb.core.items import RawItem
from wnb.core.policy import Principal
from wnb.core.ruleset import Ruleset
from wnb.rule_files import load_ruleset
from wnb.service import Service
from wnb.service.simulate import simulate
from wnb.store import listing, repo

CHILD = "9990000018"
START = datetime(2026, 3, 1, tzinfo=UTC)
END = datetime(2026, 3, 3, tzinfo=UTC)


def miss(event_id: str, day: int) -> RawItem:
    """A seven-year-old not brought to community paediatrics on the given day of March 2026."""
    when = f"2026-03-{day:02d}"
    return raw(event(event_id, appointment_at=f"{when}T10:00:00+00:00", recorded_at=f"{when}T11:00:00+00:00"), None)


def candidate(tmp_path: Path, repeat_misses: int) -> Path:
    """A copy of the default ruleset with the repeat-miss threshold changed."""
    folder = tmp_path / "candidate"
    shutil.copytree(DEFAULT_RULES, folder, ignore=shutil.ignore_patterns("scenarios"))
    settings = folder / "ruleset.yaml"
    text = settings.read_text()
    assert "repeat_misses: 2" in text
    settings.write_text(text.replace("repeat_misses: 2", f"repeat_misses: {repeat_misses}"))
    return folder


def two_misses(service: Service) -> None:
    service.ingest([miss("e1", 1), miss("e2", 2)], origin="test")


def test_raising_the_repeat_threshold_shows_the_repeat_flag_no_longer_raised(service: Service, tmp_path: Path) -> None:
    two_misses(service)
    result = simulate(service.db, load_ruleset(candidate(tmp_path, 3)), START, END)
    wnb06 = next(row for row in result.by_rule if row.key == "WNB-06")
    assert (wnb06.actual_flags, wnb06.simulated_flags) == (1, 0)
    assert any(item.code == "repeat-wnb" for item in result.only_actual)


def test_the_same_ruleset_replayed_raises_exactly_what_was_raised(service: Service, ruleset: Ruleset) -> None:
    two_misses(service)
    result = simulate(service.db, ruleset, START, END)
    assert result.events_replayed == 2
    assert not result.differs, result.as_dict()


def test_per_role_counts_show_the_tasks_a_role_would_no_longer_get(service: Service, tmp_path: Path) -> None:
    two_misses(service)
    result = simulate(service.db, load_ruleset(candidate(tmp_path, 3)), START, END)
    nurse = next(row for row in result.by_role if row.key == "safeguarding-nurse")
    assert nurse.actual_tasks == 1 and nurse.simulated_tasks == 0  # safeguarding-discussion of WNB-06


def test_simulation_never_writes_to_the_real_database(service: Service, tmp_path: Path) -> None:
    two_misses(service)
    with service.db.connect() as connection:
        before = connection.execute(select(func.count()).select_from(repo.tasks)).scalar_one()
        audit_before = connection.execute(select(func.count()).select_from(repo.links)).scalar_one()
    simulate(service.db, load_ruleset(candidate(tmp_path, 1)), START, END)
    with service.db.connect() as connection:
        assert connection.execute(select(func.count()).select_from(repo.tasks)).scalar_one() == before
        assert connection.execute(select(func.count()).select_from(repo.links)).scalar_one() == audit_before


def test_items_raised_outside_the_period_are_not_compared(service: Service, tmp_path: Path) -> None:
    two_misses(service)
    later = datetime(2026, 4, 1, tzinfo=UTC)
    result = simulate(service.db, load_ruleset(candidate(tmp_path, 3)), later, datetime(2026, 4, 2, tzinfo=UTC))
    assert not result.differs


def test_a_period_that_ends_before_it_starts_is_refused(service: Service, ruleset: Ruleset) -> None:
    with pytest.raises(Exception, match="must end after it starts"):
        simulate(service.db, ruleset, END, START)


def test_cli_prints_the_comparison_as_json(service: Service, tmp_path: Path, db_url: str) -> None:
    two_misses(service)
    folder = candidate(tmp_path, 3)
    result = CliRunner().invoke(
        app,
        ["rules", "simulate", "--rules", str(folder), "--from", "2026-03-01", "--to", "2026-03-02", "--json"],
        env={"WNB_DATABASE_URL": db_url},
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    wnb06 = next(row for row in answer["by_rule"] if row["key"] == "WNB-06")
    assert (wnb06["actual_flags"], wnb06["simulated_flags"]) == (1, 0)


def test_cli_table_names_the_rules_that_differ(service: Service, tmp_path: Path, db_url: str) -> None:
    two_misses(service)
    folder = candidate(tmp_path, 3)
    result = CliRunner().invoke(
        app,
        ["rules", "simulate", "--rules", str(folder), "--from", "2026-03-01", "--to", "2026-03-02"],
        env={"WNB_DATABASE_URL": db_url, "COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "WNB-06" in result.output and "differs" in result.output
    assert "actually only" in result.output and "repeat-wnb" in result.output


def test_cli_refuses_a_period_that_is_not_dates(db_url: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["rules", "simulate", "--rules", str(DEFAULT_RULES), "--from", "March", "--to", "2026-03-02"],
        env={"WNB_DATABASE_URL": db_url},
    )
    assert result.exit_code == 1
    assert "--from and --to must be dates" in result.output


def test_a_task_completed_by_a_person_is_completed_in_the_replay_too(
    service: Service, ruleset: Ruleset, clock: Any
) -> None:
    """WNB-12 reads completed clinician reviews, so the replay repeats what people did, when they did it."""
    clock.now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    service.ingest([miss("e1", 1)], origin="test")
    with service.db.connect() as connection:
        review = next(t for t in listing.tasks(connection) if t["code"] == "clinician-review")
    service.act_on_task(
        review["id"],
        "complete",
        Principal("user", "dr.lee", Role.CLINICIAN),
        "seen at home",
        at=datetime(2026, 3, 2, 9, tzinfo=UTC),
    )
    clock.now = datetime(2026, 3, 2, 14, tzinfo=UTC)
    discharge = miss("e2", 2)
    assert isinstance(discharge.data, dict)
    discharge.data.update(attendance="attended", outcome="discharged")
    service.ingest([discharge], origin="test")
    result = simulate(service.db, ruleset, START, END)
    assert not result.differs, result.as_dict()


def test_a_follow_up_judged_by_a_real_sweep_is_judged_in_the_replay_at_the_same_moment(
    service: Service, ruleset: Ruleset, clock: Any
) -> None:
    """WNB-14 is judged on what was stored when the real sweep ran, not on what arrived later."""
    clock.now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    service.ingest([miss("e1", 2)], origin="test")
    swept = datetime(2026, 4, 1, 9, tzinfo=UTC)  # after the 20-working-day deadline (30 March)
    assert service.sweep(swept)["follow_ups_judged"] == 1
    clock.now = datetime(2026, 4, 2, 12, tzinfo=UTC)
    later = miss("e2", 20)
    assert isinstance(later.data, dict)
    later.data.update(appointment_at="2026-04-20T10:00:00+00:00", attendance="booked", recorded_at=None)
    later.data.pop("recorded_at")
    service.ingest([later], origin="test")
    result = simulate(service.db, ruleset, START, datetime(2026, 5, 1, tzinfo=UTC))
    wnb14 = next(row for row in result.by_rule if row.key == "WNB-14")
    assert (wnb14.actual_flags, wnb14.simulated_flags) == (1, 1)
    assert not result.differs, result.as_dict()


def test_a_follow_up_not_yet_judged_for_real_is_not_judged_in_the_replay(
    service: Service, ruleset: Ruleset, clock: Any
) -> None:
    service.ingest([miss("e1", 2)], origin="test")
    result = simulate(service.db, ruleset, START, datetime(2026, 5, 1, tzinfo=UTC))
    assert not result.differs, result.as_dict()


def test_a_simulation_leaves_the_services_metrics_alone(service: Service, ruleset: Ruleset) -> None:
    two_misses(service)
    labels = {"kind": "flag", "rule": "WNB-06"}
    before = metrics.REGISTRY.get_sample_value("wnb_items_raised_total", labels)
    evaluations = metrics.REGISTRY.get_sample_value("wnb_evaluations_total")
    simulate(service.db, ruleset, START, END)
    assert metrics.REGISTRY.get_sample_value("wnb_items_raised_total", labels) == before
    assert metrics.REGISTRY.get_sample_value("wnb_evaluations_total") == evaluations
