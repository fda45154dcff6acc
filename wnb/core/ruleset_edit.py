"""Editing a ruleset's parameters as a form does (issue 15): each changed value written into ruleset.yaml where it
stands, comments and layout kept, and the hazard log's entry for that threshold given the same value, so the diff
a safety officer reads shows exactly what changed. The files are then checked by the ruleset loader like any other.

Pure: file names to bytes in, file names to bytes out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import yaml

from wnb.core.errors import RulesetError
from wnb.core.ruleset import HAZARDS_FILE, SETTINGS_FILE


def editable_parameters(files: Mapping[str, bytes]) -> list[tuple[str, Any]]:
    """Every scalar setting of ruleset.yaml (numbers, words, yes/no) by its dotted name, in file order."""
    found: list[tuple[str, Any]] = []

    def walk(value: Any, prefix: str) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(inner, f"{prefix}.{key}" if prefix else str(key))
        elif isinstance(value, bool | int | float | str):
            found.append((prefix, value))

    walk(yaml.safe_load(files.get(SETTINGS_FILE, b"")) or {}, "")
    return found


def _parsed(name: str, old: Any, text: str) -> Any:
    given = text.strip()
    if isinstance(old, bool):
        if given.lower() not in ("true", "false"):
            raise RulesetError(f"{SETTINGS_FILE}: {name}: give true or false, not {given!r}")
        return given.lower() == "true"
    if isinstance(old, int):
        try:
            return int(given)
        except ValueError:
            raise RulesetError(f"{SETTINGS_FILE}: {name}: give a whole number, not {given!r}") from None
    if isinstance(old, float):
        try:
            return float(given)
        except ValueError:
            raise RulesetError(f"{SETTINGS_FILE}: {name}: give a number, not {given!r}") from None
    if not given:
        raise RulesetError(f"{SETTINGS_FILE}: {name}: give a value")
    return given


def _written(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)  # a double-quoted YAML string


def _scalar_at(node: yaml.Node, path: list[str]) -> yaml.ScalarNode | None:
    for key in path:
        if not isinstance(node, yaml.MappingNode):
            return None
        inner = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)
        if inner is None:
            return None
        node = inner
    return node if isinstance(node, yaml.ScalarNode) else None


def _replace(text: str, spans: list[tuple[int, int, str]]) -> str:
    for start, end, new in sorted(spans, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def _threshold_values(hazards: str, changed: dict[str, Any]) -> str:
    root = yaml.compose(hazards)
    spans = []
    thresholds = _scalar_free(root, "thresholds")
    for item in thresholds.value if isinstance(thresholds, yaml.SequenceNode) else []:
        setting = _scalar_at(item, ["setting"])
        value = _scalar_at(item, ["value"])
        if setting is not None and value is not None and setting.value in changed:
            spans.append((value.start_mark.index, value.end_mark.index, _written(changed[setting.value])))
    return _replace(hazards, spans)


def _scalar_free(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    return next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)


def edit_parameters(files: Mapping[str, bytes], values: Mapping[str, str]) -> tuple[dict[str, bytes], list[str]]:
    """`files` with the parameters named in `values` (dotted name → the form's text) set; and the names changed.
    A value of the wrong kind, or a name ruleset.yaml does not have, is a RulesetError naming it."""
    current = dict(editable_parameters(files))
    changed: dict[str, Any] = {}
    for name, text in values.items():
        if name not in current:
            raise RulesetError(f"{SETTINGS_FILE}: there is no parameter {name}")
        value = _parsed(name, current[name], text)
        if value != current[name] or type(value) is not type(current[name]):
            changed[name] = value
    if not changed:
        return dict(files), []
    settings = files[SETTINGS_FILE].decode("utf-8")
    root = yaml.compose(settings)
    spans = []
    for name, value in changed.items():
        node = _scalar_at(root, name.split(".")) if root is not None else None
        assert node is not None  # editable_parameters found it
        spans.append((node.start_mark.index, node.end_mark.index, _written(value)))
    edited = dict(files)
    edited[SETTINGS_FILE] = _replace(settings, spans).encode("utf-8")
    if HAZARDS_FILE in files:
        edited[HAZARDS_FILE] = _threshold_values(files[HAZARDS_FILE].decode("utf-8"), changed).encode("utf-8")
    return edited, sorted(changed)
