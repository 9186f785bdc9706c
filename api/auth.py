"""API keys: stored hashed in a JSON file, each with a role (reader < curator < admin).

A key reads ``avlm_<key id>_<secret>``. The file keeps, per key id, its name, role, creation time,
a random salt and ``sha256(salt + secret)``; the secret itself is shown once, at creation. Keys are
32 random bytes, so a fast salted hash is enough (a slow KDF such as scrypt guards low-entropy
passwords against guessing, which a random key does not need) and costs nothing per request.
Look-up goes by key id, and the hash is compared in constant time.

The file is re-read when it changes on disk, so keys created or revoked with
``anatomy-vlm api-key`` take effect in a running service without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path

from anatomy_vlm.atomic import write_atomically
from anatomy_vlm.exceptions import AnatomyVLMError

KEY_PREFIX = "avlm"
FILE_VERSION = 1


class Role(str, Enum):
    READER = "reader"
    CURATOR = "curator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, needed: "Role") -> bool:
        return self.rank >= needed.rank


_RANKS = {Role.READER: 0, Role.CURATOR: 1, Role.ADMIN: 2}


class KeyFileError(AnatomyVLMError):
    """The API-key file cannot be read or holds something that is not a key record."""


@dataclass(frozen=True)
class ApiKeyRecord:
    key_id: str  # public part of the key, also its handle for revoke
    name: str  # who or what holds it (recorded as the curator in audit entries)
    role: Role
    salt: str  # hex
    hash: str  # hex sha256(salt bytes + secret bytes)
    created_at: str  # ISO-8601 UTC

    def to_dict(self) -> dict:
        return {**asdict(self), "role": self.role.value}


@dataclass(frozen=True)
class Principal:
    """Who made a request: the key's id, name and role."""

    key_id: str
    name: str
    role: Role


def _digest(salt: bytes, secret: str) -> str:
    return hashlib.sha256(salt + secret.encode("utf-8")).hexdigest()


class KeyStore:
    """The key file: create, list, revoke and check keys. Safe to share between threads."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._records: dict[str, ApiKeyRecord] = {}
        self._stamp: tuple[int, int] | None = None  # (mtime_ns, size) of the file last read

    # -- file ------------------------------------------------------------------------------------
    def _load(self) -> dict[str, ApiKeyRecord]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._records, self._stamp = {}, None
            return self._records
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return self._records
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            records = {}
            for item in data.get("keys", []):
                record = ApiKeyRecord(**{**item, "role": Role(item["role"])})
                records[record.key_id] = record
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
            raise KeyFileError(f"API-key file {self.path} is not a valid key file: {error}") from error
        self._records, self._stamp = records, stamp
        return records

    def _save(self, records: dict[str, ApiKeyRecord]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():  # created owner-only, so the hashes are never readable by others
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        payload = {"version": FILE_VERSION, "keys": [r.to_dict() for r in sorted(records.values(), key=lambda r: r.created_at)]}
        write_atomically(self.path, (json.dumps(payload, indent=2) + "\n").encode("utf-8"))  # keeps the 0600 mode
        self._stamp = None  # re-read on next use

    # -- management ------------------------------------------------------------------------------
    def create(self, name: str, role: Role | str) -> tuple[str, ApiKeyRecord]:
        """A new key: returns ``(the key to hand out, its record)``; only the record is stored."""
        role = Role(role)
        if not name.strip():
            raise ValueError("an API key needs a non-empty name")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        record = ApiKeyRecord(key_id=key_id, name=name.strip(), role=role, salt=salt.hex(), hash=_digest(salt, secret),
                              created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        with self._lock:
            records = dict(self._load())
            records[key_id] = record
            self._save(records)
        return f"{KEY_PREFIX}_{key_id}_{secret}", record

    def list(self) -> list[ApiKeyRecord]:
        with self._lock:
            return sorted(self._load().values(), key=lambda r: r.created_at)

    def revoke(self, key_id: str) -> ApiKeyRecord:
        with self._lock:
            records = dict(self._load())
            if key_id not in records:
                raise KeyError(f"no API key with id {key_id!r} in {self.path}")
            record = records.pop(key_id)
            self._save(records)
        return record

    # -- checking --------------------------------------------------------------------------------
    def authenticate(self, presented: str) -> Principal | None:
        """The key's principal, or ``None`` for a malformed, unknown or revoked key."""
        prefix, _, rest = presented.partition("_")
        key_id, _, secret = rest.partition("_")
        if prefix != KEY_PREFIX or not key_id or not secret:
            return None
        with self._lock:
            record = self._load().get(key_id)
        if record is None:
            return None
        if not hmac.compare_digest(_digest(bytes.fromhex(record.salt), secret), record.hash):
            return None
        return Principal(key_id=record.key_id, name=record.name, role=record.role)
