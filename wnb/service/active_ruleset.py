"""The ruleset in force: the registry's active version (issue 15 part 3), and on first start with an empty
registry the ruleset of WNB_RULES_DIR, registered and activated as "active, not yet approved".

Every command that evaluates (`wnb ingest`, `wnb sweep`, `wnb serve`, …) builds its Service over this ruleset
rather than over the directory, so what a clinical safety officer approved and an administrator activated is
what judges events. The version is chosen when the service is built (for `wnb serve`, when it starts).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from wnb.core.ruleset import SETTINGS_FILE, Ruleset, load_files
from wnb.rule_files import directory_version, read_files
from wnb.store import rulesets


def directory_files(folder: Path) -> dict[str, bytes]:
    """The ruleset files of `folder`, validated (a RulesetError names the file, rule and field otherwise)."""
    files = read_files(folder) if (folder / SETTINGS_FILE).is_file() else {}
    load_files(files, str(folder))
    return files


def active_ruleset(db: Engine, folder: Path, now: datetime) -> Ruleset:
    """The registry's active version at `now`, registering `folder`'s ruleset first when the registry is empty."""
    release = rulesets.active(db, now)
    if release is None:
        release = rulesets.register_first(db, directory_files(folder), str(folder), now)
    # Messages (and the simulate page's default) name the folder while it holds the active version itself.
    same = (folder / SETTINGS_FILE).is_file() and directory_version(folder) == release.version
    return load_files(rulesets.files_of(db, release.version), str(folder) if same else f"version {release.short}")
