"""wnb: raises safeguarding flags and escalation tasks when children are not brought to appointments."""

__version__ = "0.1.0"
