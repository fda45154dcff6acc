"""A ruleset directory read into the mapping of file names to bytes that wnb.core.ruleset loads.

The core never touches the filesystem: this adapter reads `ruleset.yaml` and the rule files beside it (the
scenario files in `scenarios/` are not part of a ruleset's content) and hands them on.
"""

from __future__ import annotations

from pathlib import Path

from wnb.core.ruleset import SETTINGS_FILE, Ruleset, content_version, load_files


def read_files(directory: str | Path) -> dict[str, bytes]:
    """Every file of the ruleset in `directory`: ruleset.yaml and the *.yaml beside it, by name."""
    folder = Path(directory)
    return {path.name: path.read_bytes() for path in sorted(folder.glob("*.yaml")) if path.is_file()}


def directory_version(directory: str | Path) -> str:
    """The version of the ruleset in `directory`, as load_ruleset would give it."""
    return content_version(read_files(directory))


def load_ruleset(directory: str | Path) -> Ruleset:
    """Read and validate a ruleset directory; every problem is a RulesetError naming file, rule and field."""
    folder = Path(directory)
    files = read_files(folder) if (folder / SETTINGS_FILE).is_file() else {}
    return load_files(files, str(folder))
