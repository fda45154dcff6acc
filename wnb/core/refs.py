"""How people and messages name flags and tasks: `F12`, `T34`. Pure."""

from __future__ import annotations

from wnb.core.errors import NotFound


def flag_ref(flag_id: int) -> str:
    return f"F{flag_id}"


def task_ref(task_id: int) -> str:
    return f"T{task_id}"


def parse_ref(text: str, prefix: str) -> int:
    """`T12`, `t12` or `12` → 12 for prefix T."""
    body = text.strip().upper().removeprefix(prefix)
    if not (body.isascii() and body.isdigit() and len(body) <= 18):  # ASCII digits that fit a 64-bit id
        raise NotFound(f"{text!r} is not a {'task' if prefix == 'T' else 'flag'} id (e.g. {prefix}12)")
    return int(body)
