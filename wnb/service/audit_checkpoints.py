"""Signed checkpoints of the audit chain's head, for write-once storage: proof of what the log once held.

A checkpoint file says "record SEQ had hash HASH at TIME", signed with an Ed25519 key that only wnb holds
(`WNB_AUDIT_SIGNING_KEY`). Anyone with the public key, an external auditor included, can check the files
and compare the chain with them (`wnb audit verify --checkpoints DIR --public-key FILE`) without holding
anything that could forge the chain: a log cut short or rewritten since a checkpoint no longer matches it.
A checkpoint is written only for a chain that verifies, so a tampered log is never vouched for.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Connection, Engine

from wnb.core.audit_chain import canonical
from wnb.core.errors import WnbError
from wnb.store.audit import Checkpoint, verify

FORMAT = "wnb-audit-checkpoint/1"
PREFIX = "audit-checkpoint-"
PRIVATE_KEY_FILE = "WNB_AUDIT_SIGNING_KEY"  # named like the setting, so it can go into WNB_SECRETS_DIR as it is
PUBLIC_KEY_FILE = "audit-signing-key.pub"


def generate_key_pair(directory: Path) -> tuple[Path, Path]:
    """Write a new Ed25519 pair into `directory`: the private key (mode 0600) and the public key; never replaces."""
    if not directory.is_dir():
        raise WnbError(f"{directory}: no such folder")
    private_path, public_path = directory / PRIVATE_KEY_FILE, directory / PUBLIC_KEY_FILE
    for path in (private_path, public_path):
        if path.exists():
            raise WnbError(f"{path}: already exists; choose another folder (a key is never replaced)")
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(private_pem)
    public_path.write_bytes(public_pem)
    return private_path, public_path


def load_private_key(pem: str) -> Ed25519PrivateKey:
    """The signing key of WNB_AUDIT_SIGNING_KEY (a PEM file's text, or its body on one line, as an environment
    variable holds it), or one clear error naming the setting."""
    if "-----BEGIN" not in pem:
        body = "".join(pem.split())
        lines = "\n".join(body[start : start + 64] for start in range(0, len(body), 64))
        pem = f"-----BEGIN PRIVATE KEY-----\n{lines}\n-----END PRIVATE KEY-----\n"
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise WnbError("WNB_AUDIT_SIGNING_KEY is not a readable PEM private key (make one: wnb audit keygen)") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise WnbError("WNB_AUDIT_SIGNING_KEY is not an Ed25519 key (make one: wnb audit keygen)")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file, or one clear error naming the file."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as error:
        raise WnbError(f"{path}: cannot read the public key ({error.strerror})") from None
    except ValueError:
        raise WnbError(f"{path}: not a PEM public key (use the .pub file of `wnb audit keygen`)") from None
    if not isinstance(key, Ed25519PublicKey):
        raise WnbError(f"{path}: not an Ed25519 public key (use the .pub file of `wnb audit keygen`)")
    return key


def key_fingerprint(public: Ed25519PublicKey) -> str:
    """A short name of a public key: the first 16 hex digits of SHA-256 over its raw bytes."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _signed_text(seq: int, head_hash: str, at: datetime, key: str) -> bytes:
    return canonical({"format": FORMAT, "seq": seq, "hash": head_hash, "at": at.isoformat(), "key": key}).encode()


def write_checkpoint(directory: Path, seq: int, head_hash: str, at: datetime, private: Ed25519PrivateKey) -> Path:
    """Sign the head and write it as a new file of `directory` (whole, or not at all; never over another)."""
    if not directory.is_dir():
        raise WnbError(f"{directory}: no such folder (WNB_AUDIT_CHECKPOINT_DIR or --to)")
    at = at.astimezone(UTC)
    key = key_fingerprint(private.public_key())
    signature = private.sign(_signed_text(seq, head_hash, at, key))
    content = {
        "format": FORMAT,
        "seq": seq,
        "hash": head_hash,
        "at": at.isoformat(),
        "key": key,
        "signature": base64.b64encode(signature).decode(),
    }
    path = directory / f"{PREFIX}{seq:012d}-{at:%Y%m%dT%H%M%S%fZ}.json"
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("w") as handle:
        handle.write(json.dumps(content, indent=2) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(partial, path)  # fails if the name exists: a checkpoint is never replaced
    except FileExistsError:
        raise WnbError(f"{path}: already exists; a checkpoint is never replaced") from None
    finally:
        partial.unlink()
    return path


def read_checkpoint(path: Path, keys: Sequence[Ed25519PublicKey]) -> Checkpoint:
    """One checkpoint file, its signature checked against `keys`; a clear error naming the file if it fails."""
    try:
        content = json.loads(path.read_text())
        seq, head_hash, at_text, key = content["seq"], content["hash"], content["at"], content["key"]
        signature = base64.b64decode(content["signature"], validate=True)
        at = datetime.fromisoformat(at_text)
        if content["format"] != FORMAT or type(seq) is not int or type(head_hash) is not str:
            raise ValueError(content["format"])
    except (OSError, ValueError, KeyError, TypeError):
        raise WnbError(f"checkpoint {path.name}: not a readable wnb audit checkpoint") from None
    signed = _signed_text(seq, head_hash, at, key)
    for public in keys:
        try:
            public.verify(signature, signed)
        except InvalidSignature:
            continue
        return Checkpoint(seq, head_hash, at, path.name)
    raise WnbError(f"checkpoint {path.name}: its signature does not match the public key: forged or changed")


def read_checkpoints(directory: Path, keys: Sequence[Ed25519PublicKey]) -> tuple[Checkpoint, ...]:
    """Every checkpoint file of `directory`, oldest first, each signature checked."""
    if not directory.is_dir():
        raise WnbError(f"{directory}: no such folder of checkpoints")
    paths = sorted(directory.glob(f"{PREFIX}*.json"))
    if not paths:
        raise WnbError(f"{directory}: holds no checkpoint file ({PREFIX}*.json)")
    return tuple(read_checkpoint(path, keys) for path in paths)


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A read transaction that sees one moment: the records and the head it reads belong together."""
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            yield connection


@dataclass
class CheckpointWriter:
    """Writes a checkpoint of the verified head; each one verifies only the records since the previous."""

    engine: Engine
    private: Ed25519PrivateKey
    directory: Path
    last: Checkpoint | None = field(default=None)

    def take(self, now: datetime) -> Path:
        """Verify the chain since the last checkpoint (all of it the first time) and sign its head."""
        since = self.last or self._newest_in_directory()
        with snapshot(self.engine) as connection:
            verified = verify(connection, since=since)
        if not verified.ok:
            raise WnbError(f"no checkpoint written: the audit log is NOT intact: {verified.problem}")
        seq, head_hash = verified.head
        path = write_checkpoint(self.directory, seq, head_hash, now, self.private)
        self.last = Checkpoint(seq, head_hash, now, path.name)
        return path

    def _newest_in_directory(self) -> Checkpoint | None:
        """The newest checkpoint of our own key already in the folder (None: none, or not a folder yet)."""
        public = self.private.public_key()
        if not self.directory.is_dir():
            return None
        newest = None
        for path in sorted(self.directory.glob(f"{PREFIX}*.json")):
            try:
                checkpoint = read_checkpoint(path, [public])
            except WnbError:  # another key's, or unreadable: `wnb audit verify --checkpoints` reports it
                continue
            if newest is None or checkpoint.seq >= newest.seq:
                newest = checkpoint
        return newest
