"""Editing a ruleset's parameters as the Rulesets form does: the value written where it stands, the hazard log's
threshold entry given the same value, a value of the wrong kind refused naming the parameter."""

from __future__ import annotations

import pytest

from tests.conftest import DEFAULT_RULES
from wnb.core.errors import RulesetError
from wnb.core.ruleset import load_files
from wnb.core.ruleset_edit import edit_parameters, editable_parameters
from wnb.rule_files import read_files

WINDOW = "counts.missed_all_services_365d.window_days"


def test_a_changed_parameter_is_written_in_place_keeping_every_comment() -> None:
    files = read_files(DEFAULT_RULES)
    edited, changed = edit_parameters(files, {WINDOW: "300", "parameters.repeat_misses": "2"})
    assert changed == [WINDOW]
    old, new = files["ruleset.yaml"].decode().splitlines(), edited["ruleset.yaml"].decode().splitlines()
    assert [(a, b) for a, b in zip(old, new, strict=True) if a != b] == [
        (
            "  missed_all_services_365d:   {count: missed, services: all, window_days: 365}",
            "  missed_all_services_365d:   {count: missed, services: all, window_days: 300}",
        )
    ]
    assert load_files(edited, "edited").settings.counts["missed_all_services_365d"].window_days == 300


def test_the_hazard_logs_entry_for_the_threshold_takes_the_new_value() -> None:
    files = read_files(DEFAULT_RULES)
    edited, _ = edit_parameters(files, {WINDOW: "300"})
    old, new = files["hazards.yaml"].decode(), edited["hazards.yaml"].decode()
    assert f"- setting: {WINDOW}\n    value: 365" in old and f"- setting: {WINDOW}\n    value: 300" in new


def test_a_value_of_the_wrong_kind_or_an_unknown_parameter_is_refused_naming_it() -> None:
    files = read_files(DEFAULT_RULES)
    with pytest.raises(RulesetError, match=f"{WINDOW}: give a whole number"):
        edit_parameters(files, {WINDOW: "a year"})
    with pytest.raises(RulesetError, match="there is no parameter parameters.nonsense"):
        edit_parameters(files, {"parameters.nonsense": "1"})


def test_the_form_offers_every_scalar_setting_and_no_list() -> None:
    names = dict(editable_parameters(read_files(DEFAULT_RULES)))
    assert names[WINDOW] == 365 and names["calendar.working_day_ends"] == "17:00"
    assert not any(name.startswith("escalation.chains") for name in names)
