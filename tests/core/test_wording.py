"""The words people read for statuses and codes (wnb/core/wording.py)."""

from __future__ import annotations

import pytest

from wnb.core.wording import code_title, flag_status, task_status


@pytest.mark.parametrize(
    ("status", "words"),
    [
        ("requested", "not yet acknowledged"),
        ("accepted", "acknowledged"),
        ("completed", "done"),
        ("cancelled", "cancelled"),
    ],
)
def test_task_statuses_read_as_words(status: str, words: str) -> None:
    assert task_status(status) == words


@pytest.mark.parametrize(
    ("status", "words"),
    [("active", "active"), ("inactive", "resolved"), ("entered-in-error", "withdrawn (entered in error)")],
)
def test_flag_statuses_read_as_words(status: str, words: str) -> None:
    assert flag_status(status) == words


def test_an_unknown_status_reads_as_its_words() -> None:
    assert task_status("on-hold") == "on hold"


def test_a_code_no_ruleset_titles_reads_as_a_sentence_of_its_words() -> None:
    assert code_title("call-school") == "Call school"
