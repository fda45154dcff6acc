"""The few errors wnb raises; each message names the offending file, line, rule, field or id."""

from __future__ import annotations


class WnbError(Exception):
    """Base of every error wnb raises on purpose."""


class InvalidEvent(WnbError):
    """An incoming event or row failed validation; `field` names what was wrong."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")

    def __reduce__(self) -> tuple[type[InvalidEvent], tuple[str, str], dict[str, object]]:
        # Pickled whole (a reader naming a message's identity included) when a line is checked in another
        # process; Exception's own pickling would call __init__ with the message alone.
        return type(self), (self.field, self.reason), self.__dict__


class StaleEvent(InvalidEvent):
    """Not a refusal: why an accepted event was stored as stale (never evaluated), for the sender's answer."""


class RulesetError(WnbError):
    """A rule file failed to load or validate; the message names file, rule id and field."""


class NotFound(WnbError):
    """No flag, task or record with the given id."""


class InvalidAction(WnbError):
    """A human action that the item's current status does not allow."""


class NoteRequired(InvalidAction):
    """Completing or cancelling a task without a note of what was done or why (issue 16); the API answers 422."""


class EngineError(WnbError):
    """The rule matcher reported an error during an evaluation."""


class Forbidden(WnbError):
    """The caller's role (or a key's binding) does not allow the action (wnb.core.policy); the message says who may."""


class NotBound(InvalidEvent):
    """An item a client key may not write (another source, or context without the binding): kept as a reject."""
