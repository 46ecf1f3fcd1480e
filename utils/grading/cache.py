"""Cache entries nobody can forge: each graded result in OUT/.cache is signed with HMAC-SHA256 under a secret only
the grader reads (OUT/.cache-secret, mode 0600, made on first use, never inside a sandbox), bound to the entry's
file name (the hash of the submission and the grading settings). An entry that does not verify is graded again,
so copying a classmate's entry, editing a score or writing a new entry gains nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import stat
import threading
from pathlib import Path
from typing import Any

#: The secret's file in the output folder.
SECRET_NAME = ".cache-secret"
#: The field of a cache entry that holds its signature.
MAC_FIELD = "_mac"


def _canonical(result: dict[str, Any]) -> bytes:
    """The bytes a result's signature covers (the same for the same data, whatever the key order)."""
    return json.dumps(result, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True).encode()


class CacheSigner:
    """Signs and checks the cache entries of one output folder."""

    def __init__(self, out: Path) -> None:
        self.path = Path(out) / SECRET_NAME
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def key(self) -> bytes:
        """The folder's secret: read it if it is a private regular file of ours, else make a new one."""
        with self._lock:
            if self._key is None:
                self._key = self._read() or self._create()
            return self._key

    def _read(self) -> bytes | None:
        """The existing secret, or None (missing, a link, not ours, readable by others, malformed)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(fd)
            text = handle.read(200).strip()
        private = stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid() and not info.st_mode & 0o077
        if private and len(text) == 64:
            try:
                return bytes.fromhex(text.decode("ascii"))
            except ValueError:
                pass
        return None

    def _create(self) -> bytes:
        """A new random secret in a new 0600 file (replacing an unusable one: its entries are then graded again)."""
        key = secrets.token_bytes(32)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f"{SECRET_NAME}.{secrets.token_hex(8)}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key.hex() + "\n")
        os.replace(temporary, self.path)
        return key

    def _mac(self, name: str, result: dict[str, Any]) -> str:
        """The signature of `result` stored under the file name `name`."""
        return hmac.new(self.key(), name.encode() + b"\0" + _canonical(result), hashlib.sha256).hexdigest()

    def seal(self, name: str, result: dict[str, Any]) -> str:
        """The JSON text of a signed cache entry for `result`, to be stored as file `name`."""
        return json.dumps({**result, MAC_FIELD: self._mac(name, result)}, sort_keys=True)

    def open(self, name: str, text: str) -> dict[str, Any] | None:
        """The result in a cache entry's text if its signature is right for file `name`, else None."""
        try:
            entry = json.loads(text)
        except ValueError:
            return None
        mac = entry.pop(MAC_FIELD, None) if isinstance(entry, dict) else None
        if not isinstance(mac, str) or not hmac.compare_digest(mac, self._mac(name, entry)):
            return None
        return entry
