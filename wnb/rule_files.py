"""A ruleset directory read into the mapping of file names to bytes that wnb.core.ruleset loads.

The core never touches the filesystem: this adapter reads `ruleset.yaml`, the rule files and the hazard log
(`hazards.yaml`) beside it, and the scenario files in `scenarios/` (as `scenarios/NAME.yaml`), and hands them on.
All of them are part of the ruleset's content version. It also reads the modules of wnb's own test suite that a
hazard log names as evidence (`read_suite`), for wnb.core.hazards to look the tests up in.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from wnb.core.ruleset import SCENARIOS_FOLDER, SETTINGS_FILE, Ruleset, content_version, load_files, titles_in


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


def read_titles(directory: str | Path) -> dict[str, str]:
    """The words of each flag and task code, from `directory`'s ruleset.yaml alone ({} without one)."""
    path = Path(directory) / SETTINGS_FILE
    return titles_in(path.read_bytes(), str(path)) if path.is_file() else {}


def load_ruleset(directory: str | Path) -> Ruleset:
    """Read and validate a ruleset directory; every problem is a RulesetError naming file, rule and field."""
    folder = Path(directory)
    files = read_files(folder) if (folder / SETTINGS_FILE).is_file() else {}
    return load_files(files, str(folder))


# A source checkout: the folder holding pyproject.toml, the wnb package and its tests/ (an installed wheel or the
# container image has no tests/ beside the package).
SOURCE_ROOT = Path(__file__).resolve().parents[1]


def read_suite(paths: Iterable[str], root: Path = SOURCE_ROOT) -> dict[str, bytes] | None:
    """The sources of the named modules of wnb's own test suite (`tests/…/test_x.py`) that exist, by path; None when
    wnb runs without its suite, so no test can be looked for."""
    if not ((root / "pyproject.toml").is_file() and (root / "tests").is_dir()):
        return None
    inside = [path for path in paths if Path(path).parts[:1] == ("tests",) and ".." not in Path(path).parts]
    return {path: (root / path).read_bytes() for path in inside if (root / path).is_file()}
