"""A ruleset directory read into the mapping of file names to bytes that wnb.core.ruleset loads.

The core never touches the filesystem: this adapter reads `ruleset.yaml`, the rule files and the hazard log
(`hazards.yaml`) beside it, and the scenario files in `scenarios/` (as `scenarios/NAME.yaml`), and hands them on.
All of them are part of the ruleset's content version.
"""

from __future__ import annotations

from pathlib import Path

from wnb.core.ruleset import SCENARIOS_FOLDER, SETTINGS_FILE, Ruleset, content_version, load_files


def read_files(directory: str | Path) -> dict[str, bytes]:
    """Every file of the ruleset in `directory`, by name: ruleset.yaml, the rules and hazards.yaml beside it, and
    each scenarios/*.yaml as `scenarios/NAME.yaml`."""
    folder = Path(directory)
    files = {path.name: path.read_bytes() for path in sorted(folder.glob("*.yaml")) if path.is_file()}
    for path in sorted((folder / SCENARIOS_FOLDER).glob("*.yaml")):
        if path.is_file():
            files[SCENARIOS_FOLDER + path.name] = path.read_bytes()
    return files


def directory_version(directory: str | Path) -> str:
    """The version of the ruleset in `directory`, as load_ruleset would give it."""
    return content_version(read_files(directory))


def load_ruleset(directory: str | Path) -> Ruleset:
    """Read and validate a ruleset directory; every problem is a RulesetError naming file, rule and field."""
    folder = Path(directory)
    files = read_files(folder) if (folder / SETTINGS_FILE).is_file() else {}
    return load_files(files, str(folder))
