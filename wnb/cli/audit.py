"""`wnb audit export|verify|checkpoint|keygen|new-key`: the chain exported and checked, its head signed for
write-once storage, keys made."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from wnb.cli.common import fail, guarded, open_database, say
from wnb.core.errors import WnbError

if TYPE_CHECKING:
    from wnb.settings import Settings
    from wnb.store import audit

audit_app = typer.Typer(
    help="The hash-chained audit log: verify, export, signed checkpoints and its keys.", no_args_is_help=True
)


@audit_app.command("export")
def audit_export(
    format: Annotated[
        str, typer.Option("--format", help="json: the records as JSON lines; fhir: AuditEvent and Provenance NDJSON.")
    ] = "json",
) -> None:
    """Write the audit log to standard output, one JSON object a line."""
    from wnb.store import audit as audit_log

    def run() -> None:
        if format not in ("json", "fhir"):
            raise WnbError(f"--format {format!r}: use json or fhir")
        from wnb.fhir import export as fhir_export

        lines = fhir_export.export_lines if format == "fhir" else audit_log.export_lines
        with open_database().connect() as connection:
            for line in lines(connection):
                sys.stdout.write(line + "\n")

    guarded(run)


CheckpointsOption = Annotated[
    Path | None,
    typer.Option(
        "--checkpoints",
        help="A folder of checkpoint files (from `wnb audit checkpoint`): the chain must hold and match every one. "
        "Default: WNB_AUDIT_CHECKPOINT_DIR, once it holds any.",
    ),
]


PublicKeyOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--public-key",
        help="The public key the checkpoints are signed with (the .pub file of `wnb audit keygen`); repeat it "
        "for a retired key. Default: the public half of WNB_AUDIT_SIGNING_KEY.",
    ),
]


def _checkpoints(
    settings: Settings, folder: Path | None, public_keys: list[Path] | None
) -> tuple[audit.Checkpoint, ...]:
    """The checkpoints to compare the chain with: those of --checkpoints, else those wnb wrote itself
    (WNB_AUDIT_CHECKPOINT_DIR, checked with the public half of WNB_AUDIT_SIGNING_KEY) once there are any."""
    from wnb.service.audit_checkpoints import PREFIX, load_private_key, load_public_key, read_checkpoints

    if folder is None:
        if public_keys:
            raise WnbError("--public-key checks checkpoints: give the folder too, --checkpoints DIR")
        own = settings.audit_checkpoint_dir
        if own is None or settings.audit_signing_key is None or not any(own.glob(f"{PREFIX}*.json")):
            return ()
        folder = own
    if public_keys:
        keys = [load_public_key(path) for path in public_keys]
    elif settings.audit_signing_key is not None:
        keys = [load_private_key(settings.audit_signing_key.get_secret_value()).public_key()]
    else:
        raise WnbError("--checkpoints needs the key they are signed with: give --public-key FILE")
    return read_checkpoints(folder, keys)


def _summary(result: audit.Verification, checkpoints: tuple[audit.Checkpoint, ...]) -> str:
    parts = [f"audit log intact: {result.records} records verified"]
    if result.keyed:
        parts.append("each MAC checked with WNB_AUDIT_KEY")
    else:
        parts.append("MACs not checked (no WNB_AUDIT_KEY): hashes, head and checkpoints only")
    if result.unkeyed:
        parts.append(f"the first {result.unkeyed} written before audit keys, checked by their hashes alone")
    if checkpoints:
        newest = max(checkpoint.seq for checkpoint in checkpoints)
        plural = "s" if len(checkpoints) != 1 else ""
        parts.append(f"{len(checkpoints)} checkpoint{plural} matched, the newest at record {newest}")
    return "; ".join(parts)


@audit_app.command("verify")
def audit_verify(checkpoints: CheckpointsOption = None, public_key: PublicKeyOption = None) -> None:
    """Recompute the hash chain, check each MAC (WNB_AUDIT_KEY), the head, and the chain against signed
    checkpoints; exit 1 naming the first record changed, removed, moved or cut off, or the item without one."""
    from wnb.service.audit_checkpoints import snapshot
    from wnb.settings import load_settings
    from wnb.store import audit

    def run() -> None:
        settings = load_settings()
        found = _checkpoints(settings, checkpoints, public_key)
        engine = open_database(settings.database_url)
        try:
            with snapshot(engine) as connection:
                result = audit.verify(connection, checkpoints=found)
        finally:
            engine.dispose()
        if not result.ok:
            fail(f"audit log is NOT intact: {result.problem}")
        say(_summary(result, found))

    guarded(run)


@audit_app.command("checkpoint")
def audit_checkpoint(
    to: Annotated[
        Path | None,
        typer.Option("--to", help="The folder to write it to (default WNB_AUDIT_CHECKPOINT_DIR); ship it to WORM."),
    ] = None,
) -> None:
    """Verify the chain, then write its head (number, hash, time) signed with WNB_AUDIT_SIGNING_KEY as a new
    file: copy it to write-once storage, where no one who can write the database can change it."""
    from wnb.service.audit_checkpoints import CheckpointWriter, load_private_key
    from wnb.settings import load_settings

    def run() -> None:
        settings = load_settings()
        folder = to or settings.audit_checkpoint_dir
        if folder is None:
            raise WnbError("no folder for checkpoints: set WNB_AUDIT_CHECKPOINT_DIR or give --to DIR")
        if settings.audit_signing_key is None:
            raise WnbError(
                "WNB_AUDIT_SIGNING_KEY is not set: make a key pair with `wnb audit keygen DIR` and set it to the "
                "private key (or put the file WNB_AUDIT_SIGNING_KEY in WNB_SECRETS_DIR)"
            )
        private = load_private_key(settings.audit_signing_key.get_secret_value())
        engine = open_database(settings.database_url)
        try:
            writer = CheckpointWriter(engine, private, folder)
            path = writer.take(datetime.now(UTC))
        finally:
            engine.dispose()
        assert writer.last is not None
        say(f"checkpoint written: {path} (record {writer.last.seq}, hash {writer.last.hash})")

    guarded(run)


@audit_app.command("keygen")
def audit_keygen(
    folder: Annotated[Path, typer.Argument(help="A folder only operators can read, e.g. WNB_SECRETS_DIR.")],
) -> None:
    """Make the Ed25519 key pair that signs checkpoints: FOLDER/WNB_AUDIT_SIGNING_KEY (private, mode 0600, for
    WNB_SECRETS_DIR) and FOLDER/audit-signing-key.pub (public: give it to auditors). Never replaces a key."""
    from wnb.service.audit_checkpoints import generate_key_pair

    def run() -> None:
        private, public = generate_key_pair(folder)
        say(f"private key written: {private} (keep it secret and backed up; wnb reads it as WNB_AUDIT_SIGNING_KEY)")
        say(f"public key written: {public} (give it to whoever checks checkpoints: --public-key)")

    guarded(run)


@audit_app.command("new-key")
def audit_new_key(
    key_id: Annotated[
        str | None, typer.Option("--id", help="The key's id, kept in each record it signs (default: kYYYYMMDD).")
    ] = None,
) -> None:
    """Print a new audit key as ID:SECRET. Put it first in WNB_AUDIT_KEY; to rotate, keep the old keys after
    it (ID:SECRET,OLD:SECRET), so records they signed still verify."""
    from wnb.settings import parse_audit_keys
    from wnb.store.audit_keys import new_key_entry

    def run() -> None:
        entry = new_key_entry(key_id or f"k{datetime.now(UTC):%Y%m%d}")
        try:
            parse_audit_keys(entry)  # an id the setting accepts
        except ValueError as error:
            raise WnbError(f"--id {key_id!r}: {error}") from None
        say(entry)

    guarded(run)
