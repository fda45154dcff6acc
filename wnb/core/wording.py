"""How people see times and items on a terminal: UK local time, plain words. Pure formatting."""

from __future__ import annotations

from datetime import datetime

from wnb.core.calendar import LONDON, london_date, working_days_between


def local(at: datetime | str) -> str:
    """An instant as London wall-clock time, e.g. 'Mon 02 Mar 2026 17:00 GMT'."""
    moment = datetime.fromisoformat(at.replace("Z", "+00:00")) if isinstance(at, str) else at
    return moment.astimezone(LONDON).strftime("%a %d %b %Y %H:%M %Z")


def local_short(at: datetime | str) -> str:
    """An instant as a short London wall-clock time, e.g. 'Mon 02 Mar 17:00'."""
    moment = datetime.fromisoformat(at.replace("Z", "+00:00")) if isinstance(at, str) else at
    return moment.astimezone(LONDON).strftime("%a %d %b %H:%M")


def due_in_words(due: datetime | str, now: datetime) -> str:
    """'today 17:00', 'tomorrow 17:00', 'Fri 06 Mar 17:00', or 'overdue 2 working days'."""
    moment = datetime.fromisoformat(due.replace("Z", "+00:00")) if isinstance(due, str) else due
    if moment <= now:
        days = working_days_between(moment, now)
        if days == 0:
            return f"overdue since {moment.astimezone(LONDON):%H:%M} today"
        return f"overdue {days} working day{'s' if days != 1 else ''}"
    clock = moment.astimezone(LONDON).strftime("%H:%M")
    gap = (london_date(moment) - london_date(now)).days
    if gap == 0:
        return f"today {clock}"
    if gap == 1:
        return f"tomorrow {clock}"
    return moment.astimezone(LONDON).strftime("%a %d %b %H:%M")


def plain_code(code: str) -> str:
    """A kebab-case code as words: 'notify-social-worker' → 'notify social worker'."""
    return code.replace("-", " ")


# The tasks wnb raises itself, not a rule (wnb/notify/__init__.py): no ruleset titles them.
SYSTEM_TITLES = {
    "notification-uncertain": "Ask the recipient whether a notification arrived (it may not have; not resent)",
    "notification-failed": "Pass on a notification that could not be delivered",
}


def code_title(code: str) -> str:
    """The words of a code no ruleset titles: wnb's own tasks', else the code as words ('Call school')."""
    return SYSTEM_TITLES.get(code) or plain_code(code).capitalize()


TASK_STATUS_WORDS = {
    "requested": "not yet acknowledged",
    "accepted": "acknowledged",
    "awaiting-acknowledgement": "sent, awaiting acknowledgement",
    "completed": "done",
    "cancelled": "cancelled",
}
FLAG_STATUS_WORDS = {
    "active": "active",
    "inactive": "resolved",
    "entered-in-error": "withdrawn (entered in error)",
}


def task_status(status: str) -> str:
    """A task's status as people say it: 'requested' → 'not yet acknowledged', 'completed' → 'done'."""
    return TASK_STATUS_WORDS.get(status) or plain_code(status)


def flag_status(status: str) -> str:
    """A flag's status as people say it: 'inactive' → 'resolved'."""
    return FLAG_STATUS_WORDS.get(status) or plain_code(status)
