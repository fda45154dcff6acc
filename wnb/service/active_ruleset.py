"""The ruleset in force: the registry's active version (issue 15 part 3), and on first start with an empty
registry the ruleset of WNB_RULES_DIR, registered and activated as "active, not yet approved".

Every command that evaluates (`wnb ingest`, `wnb sweep`, `wnb serve`, …) builds its Service over this ruleset
rather than over the directory, so what a clinical safety officer approved and an administrator activated is
what judges events. A command chooses the version when it starts; `wnb serve` follows the registry
(`ActiveRulesets`): every transaction or ingest chunk takes the version active when it starts, so a newly
activated version judges from the first one that starts after its activation time, on every replica, without a
restart.
"""

from __future__ import annotations

import threading
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


class ActiveRulesets:
    """The registry's active version at an instant, each version loaded once: what a Service that follows the
    registry (wnb serve) asks at the start of every transaction and chunk."""

    def __init__(self, db: Engine, folder: Path) -> None:
        self.db = db
        self.folder = folder
        self._loaded: dict[str, Ruleset] = {}
        self._lock = threading.Lock()

    def __call__(self, now: datetime) -> Ruleset:
        release = rulesets.active(self.db, now)
        if release is not None and release.version in self._loaded:
            return self._loaded[release.version]
        with self._lock:
            ruleset = active_ruleset(self.db, self.folder, now)
            return self._loaded.setdefault(ruleset.version, ruleset)
