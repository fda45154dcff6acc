"""The safety case report of a ruleset version (issue 15, DCB0129/DCB0160): what a clinical safety officer signs.

Pure and deterministic: it takes the stored version (its files, its evidence, the registry's record of who did what
and when) and returns the same HTML for the same input, byte for byte. It never reads the clock: every time in it
is one the registry stored. The page is printable (print CSS) and runs no script.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from html import escape
from typing import Any

import yaml

from wnb.core.hazards import HazardLog, describe, load_hazard_log
from wnb.core.releases import Release
from wnb.core.ruleset import HAZARDS_FILE, SETTINGS_FILE, load_files

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#111;line-height:1.4}
h1{font-size:1.6rem}h2{font-size:1.25rem;border-bottom:2px solid #333;margin-top:2rem}h3{font-size:1.05rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}th,td{border:1px solid #999;padding:.25rem .4rem;
text-align:left;vertical-align:top;font-size:.9rem}th{background:#eee}code{font-size:.85rem;word-break:break-all}
.differs{background:#fff3cd}.fail{color:#a00;font-weight:bold}.pass{color:#060}.muted{color:#555}
@media print{body{margin:0;max-width:none;font-size:10pt}h2{page-break-after:avoid}tr{page-break-inside:avoid}
a{color:inherit;text-decoration:none}}
""".strip()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _e(value: object) -> str:
    return escape("" if value is None else str(value))


def _when(at: datetime | None) -> str:
    return at.isoformat() if at is not None else "—"


def _table(headers: list[str], rows: list[list[str]], id_: str, classes: list[str] | None = None) -> str:
    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in headers)
    body = []
    for index, row in enumerate(rows):
        css = f' class="{classes[index]}"' if classes and classes[index] else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    if not rows:
        body.append(f'<tr><td colspan="{len(headers)}">None.</td></tr>')
    return f'<table id="{id_}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _system_section(system: object) -> str:
    """The system controls' named tests as run at propose: how many passed, when, and each one's outcome."""
    head = '<h2 id="system-tests">System controls\' tests</h2>'
    if not isinstance(system, dict):  # a version proposed before they were run at propose
        return f"{head}<p>{_e(system or 'Not recorded')}.</p>"
    took = f" in {system['seconds']} s" if system.get("seconds") is not None else ""
    words = f"{_e(system.get('state'))}: {_e(system.get('summary'))} (at {_e(system.get('at'))}{_e(took)})"
    tests = system.get("tests") or []
    rows = [
        [
            f"<code>{_e(t.get('node'))}</code>",
            f'<span class="{"pass" if t.get("outcome") == "passed" else "fail"}">{_e(t.get("outcome"))}</span>',
        ]
        for t in tests
    ]
    return f'{head}<p id="system-summary">{words}.</p>' + (
        _table(["test", "outcome"], rows, "system-test-table") if tests else ""
    )


def parameters(files: Mapping[str, bytes]) -> list[tuple[str, Any]]:
    """Every setting of ruleset.yaml by its dotted name, in file order."""
    settings = yaml.safe_load(files.get(SETTINGS_FILE, b"")) or {}
    flat: list[tuple[str, Any]] = []

    def walk(value: Any, prefix: str) -> None:
        if isinstance(value, dict) and value:
            for key, inner in value.items():
                walk(inner, f"{prefix}.{key}" if prefix else str(key))
        else:
            flat.append((prefix, value))

    walk(settings, "")
    return flat


def _shown(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value)


def _approval(release: Release) -> str:
    if release.approved_by:
        return (
            f'<p id="approval">Approved by <strong>{_e(release.approved_by)}</strong> (clinical-safety-officer) at '
            f"{_e(_when(release.approved_at))}. Reason: {_e(release.reason)}</p>"
        )
    if release.rejected_by:
        return (
            f'<p id="approval" class="fail">Rejected by {_e(release.rejected_by)} at {_e(_when(release.rejected_at))}.'
            f" Reason: {_e(release.reason)}</p>"
        )
    return '<p id="approval" class="fail">Not yet approved by a clinical safety officer.</p>'


def _hazard_section(log: HazardLog | None, files: Mapping[str, bytes]) -> str:
    if log is None:
        return f'<h2 id="hazards">Hazard log</h2><p class="fail">This version has no {HAZARDS_FILE}.</p>'
    version = sha256_text(files[HAZARDS_FILE].decode("utf-8"))
    parts = [
        '<h2 id="hazards">Hazard log</h2>',
        f'<p>{_e(log.name)}; version (SHA-256 of {HAZARDS_FILE}) <code id="hazard-log-version">{version}</code></p>',
        f"<p>{_e(describe(log))}</p>",
    ]
    for hazard in log.hazards:
        parts.append(f'<h3 id="hazard-{_e(hazard.id)}">{_e(hazard.id)}: {_e(hazard.title)}</h3>')
        parts.append(
            f"<p>{_e(hazard.description)}</p><p><strong>Cause:</strong> {_e(hazard.cause)} "
            f"<strong>Effect:</strong> {_e(hazard.effect)}</p>"
            f"<p>Initial risk: {_e(hazard.severity.value)} × {_e(hazard.likelihood.value)} = rating "
            f"{hazard.initial.rating}; residual rating {hazard.residual_rating}</p>"
        )
        rows = [
            [
                _e(control.name),
                _e(control.description),
                f"{control.initial.rating} → {control.residual.rating}",
                _e(control.status.value),
                _e(control.owner),
                _e(control.review.isoformat()),
                _e(", ".join(control.scenarios or control.tests)),
            ]
            for control in hazard.controls
        ]
        headers = ["control", "what it does", "risk", "status", "owner", "review", "evidence"]
        parts.append(_table(headers, rows, f"controls-{_e(hazard.id)}"))
    if log.thresholds:
        rows = [
            [
                f"<code>{_e(t.setting)}</code>",
                _e(t.value),
                _e(t.basis.value) + (" (not yet traced to the trust's chart)" if t.is_untraced_design_choice else ""),
                _e(t.note),
                _e(", ".join(t.hazards)),
            ]
            for t in log.thresholds
        ]
        parts.append("<h3>Thresholds and where they come from</h3>")
        parts.append(_table(["setting", "value", "basis", "note", "hazards"], rows, "thresholds"))
    return "".join(parts)


def _backtest_section(backtest: Mapping[str, Any] | None, replaced: str | None) -> str:
    if not backtest:
        return '<h2 id="backtest">Backtest</h2><p>No backtest is stored with this version.</p>'
    against = backtest.get("compared_against") or replaced
    parts = [
        '<h2 id="backtest">Backtest against the version it replaces</h2>',
        f"<p>Compared against <code>{_e(against or 'no version (the registry was empty)')}</code>, over "
        f"{_e(backtest.get('from'))} to {_e(backtest.get('to'))}: {_e(backtest.get('events_replayed'))} events "
        f"replayed; {'differs' if backtest.get('differs') else 'raises exactly what was raised'}.</p>",
    ]
    rule_rows, rule_classes = [], []
    counts = ("actual_flags", "simulated_flags", "actual_tasks", "simulated_tasks")
    for row in backtest.get("by_rule", []):
        rule_rows.append(
            [
                _e(row["key"]),
                *(_e(row[k]) for k in counts),
            ]
        )
        rule_classes.append("differs" if row.get("differs") else "")
    headers = ["rule", "flags raised", "flags under this version", "tasks raised", "tasks under this version"]
    parts.append("<h3>Per rule</h3>" + _table(headers, rule_rows, "backtest-rules", rule_classes))
    role_rows, role_classes = [], []
    for row in backtest.get("by_role", []):
        role_rows.append([_e(row["key"]), _e(row["actual_tasks"]), _e(row["simulated_tasks"])])
        role_classes.append("differs" if row.get("differs") else "")
    parts.append(
        "<h3>Per role</h3>"
        + _table(["role", "tasks raised", "tasks under this version"], role_rows, "backtest-roles", role_classes)
    )
    return "".join(parts)


def render_report(release: Release, files: Mapping[str, bytes], evidence: Mapping[str, Any]) -> str:
    """The safety case report of `release`, from its stored `files` and `evidence`."""
    ruleset = load_files(files, f"version {release.short}")
    log = load_hazard_log(files, f"version {release.short}")
    status = release.status.value
    if status == "active" and not release.is_approved:
        status = "active, not yet approved"
    replaced = release.compared_against
    scenarios = evidence.get("scenarios") or []
    check = evidence.get("check") or {}
    parts = [
        "<!doctype html>",
        '<html lang="en-GB"><head><meta charset="utf-8">',
        f"<title>Safety case report: ruleset version {_e(release.short)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Safety case report: ruleset version {_e(release.short)}</h1>",
        '<h2 id="release">The release</h2>',
        _table(
            ["", ""],
            [
                ["configuration hash (SHA-256 of every file)", f'<code id="config-hash">{_e(release.version)}</code>'],
                ["name", _e(ruleset.settings.name)],
                ["status", _e(status) + (" (a rollback: marked for review)" if release.rollback else "")],
                ["proposed", f"by {_e(release.proposed_by)} at {_e(_when(release.proposed_at))}"],
                ["note", _e(release.note or "—")],
                ["replaces (evidence compared against)", f"<code>{_e(replaced or '—')}</code>"],
                [
                    "activated",
                    f"by {_e(release.activated_by)} from {_e(_when(release.active_from))}"
                    if release.activated_by
                    else "not activated",
                ],
                ["retired", _e(_when(release.retired_at))],
            ],
            "release-table",
        ),
        '<h2 id="approval-h">Approval</h2>',
        _approval(release),
        '<h2 id="parameters">Parameters (ruleset.yaml)</h2>',
        _table(
            ["parameter", "value"],
            [[f"<code>{_e(name)}</code>", _e(_shown(value))] for name, value in parameters(files)],
            "parameter-table",
        ),
        '<h2 id="rules">Rules</h2>',
        _table(
            ["rule", "title", "trigger", "hazards it controls"],
            [[_e(r.id), _e(r.title), _e(r.trigger), _e(", ".join(r.hazards))] for r in ruleset.rules],
            "rule-table",
        ),
        _hazard_section(log, files),
        '<h2 id="scenarios">Scenario results</h2>',
        f"<p>{sum(bool(s.get('passed')) for s in scenarios)} of {len(scenarios)} scenarios passed under this "
        "version, run from the stored files when it was proposed.</p>",
        _table(
            ["file", "scenario", "result"],
            [
                [
                    _e(s.get("file")),
                    _e(s.get("name")),
                    '<span class="pass">passed</span>'
                    if s.get("passed")
                    else '<span class="fail">failed</span> ' + _e("; ".join(s.get("problems", []))),
                ]
                for s in scenarios
            ],
            "scenario-table",
        ),
        '<h2 id="check">Check</h2>',
        f"<p>{'Passed' if check.get('passed') else 'Not recorded'}.</p>",
        "<ul>" + "".join(f"<li>{_e(w)}</li>" for w in check.get("warnings", [])) + "</ul>",
        _system_section(evidence.get("system_controls")),
        _backtest_section(evidence.get("backtest"), replaced),
        '<h2 id="files">Files of the version</h2>',
        _table(
            ["file", "SHA-256"],
            [[_e(name), f"<code>{sha256_text(files[name].decode('utf-8'))}</code>"] for name in sorted(files)],
            "file-table",
        ),
        '<p class="muted">Made from the registry\'s stored record of this version; every time above is UTC as the '
        "registry stored it. The same stored record always gives this same report.</p>",
        "</body></html>",
        "",
    ]
    return "\n".join(parts)
