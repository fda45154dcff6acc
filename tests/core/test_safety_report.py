"""The safety case report is a pure function of the stored record: the same input, the same bytes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from tests.conftest import DEFAULT_RULES
from wnb.core.releases import Release, Status
from wnb.core.ruleset import content_version
from wnb.core.safety_report import render_report
from wnb.rule_files import read_files

AT = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _release() -> Release:
    files = read_files(DEFAULT_RULES)
    return Release(content_version(files), Status.PROPOSED, "gov.sam", AT, note="a note", compared_against="ab" * 32)


def test_the_same_record_gives_the_same_bytes_and_an_approval_changes_them() -> None:
    files, release = read_files(DEFAULT_RULES), _release()
    evidence = {"scenarios": [{"file": "scenarios/x.yaml", "name": "x", "passed": True, "problems": []}]}
    first, again = render_report(release, files, evidence), render_report(release, files, evidence)
    assert first == again
    approved = replace(release, status=Status.APPROVED, approved_by="cso.one", approved_at=AT, reason="fine")
    signed = render_report(approved, files, evidence)
    assert signed != first and "Approved by <strong>cso.one</strong>" in signed
    assert "Not yet approved" in first


def test_the_report_has_no_script_and_prints() -> None:
    html = render_report(_release(), read_files(DEFAULT_RULES), {})
    assert "<script" not in html and "@media print" in html and "No backtest is stored" in html
