"""Console sessions: what the session cookie holds and how a session ends.

The cookie is ``<session id>.<sealed>``: the API token, the CSRF token and who the token
is, sealed with AES-256-GCM under ``$MOMA_HOME/console.key`` (bound to the session id),
so the token is never readable from the cookie and never stored on disk. A session
lives while its file ``$MOMA_HOME/console/sessions/<sha256 of the id>`` does and its
time has not run out: signing out removes the file, so a copy of the cookie is dead
from then on. Every API process of an installation on this host sees the same files.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import secrets
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

LIFETIME_SECONDS = 8 * 3600


@dataclass(frozen=True)
class Session:
    id: str
    token: str
    csrf: str
    admin: bool
    account: tuple[str, str, str] | None  # an account token's (subscription, resource group, name)
    expires: float


class Sessions:
    def __init__(self, home: Path) -> None:
        self.directory = home / "console" / "sessions"
        self.key_file = home / "console.key"

    @functools.cached_property
    def _aead(self) -> AESGCM:
        """Made on first use: an API that nobody signs in to writes no key."""
        return AESGCM(load_or_create_key(self.key_file))

    def start(self, token: str, admin: bool, account: tuple[str, str, str] | None) -> tuple[Session, str]:
        """A new session and its cookie value."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._sweep()
        session = Session(id=secrets.token_urlsafe(32), token=token, csrf=secrets.token_urlsafe(32), admin=admin,
                          account=account, expires=time.time() + LIFETIME_SECONDS)
        descriptor = os.open(self._file(session.id), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(f"{session.expires:.0f}\n")
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, json.dumps(asdict(session)).encode(), session.id.encode())
        return session, f"{session.id}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def load(self, cookie: str | None) -> Session | None:
        """The live session of a cookie value, or None."""
        session_id, _, sealed = (cookie or "").partition(".")
        if not session_id or not sealed or not self._alive(session_id):
            return None
        try:
            raw = base64.urlsafe_b64decode(sealed.encode())
            fields = json.loads(self._aead.decrypt(raw[:12], raw[12:], session_id.encode()))
        except (ValueError, InvalidTag):
            return None
        account = fields.pop("account")
        session = Session(**fields, account=tuple(account) if account else None)
        return session if session.id == session_id and session.expires > time.time() else None

    def end(self, session_id: str) -> None:
        self._file(session_id).unlink(missing_ok=True)

    def _alive(self, session_id: str) -> bool:
        try:
            return float(self._file(session_id).read_text()) > time.time()
        except (OSError, ValueError):
            return False

    def _file(self, session_id: str) -> Path:
        return self.directory / hashlib.sha256(session_id.encode()).hexdigest()

    def _sweep(self) -> None:
        """Remove the files of sessions whose time ran out."""
        now = time.time()
        for path in self.directory.iterdir():
            try:
                if float(path.read_text()) < now:
                    path.unlink(missing_ok=True)
            except (OSError, ValueError):
                continue


def load_or_create_key(path: Path) -> bytes:
    """The 256-bit key in ``path`` (base64, mode 0600), made on first use. Several processes
    may start at once: the key is written to a temporary file and linked into place, so
    every process reads the one key that won, never a half-written file."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".console-key-")
        try:
            with os.fdopen(descriptor, "wb") as out:
                out.write(base64.b64encode(AESGCM.generate_key(bit_length=256)) + b"\n")
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    key = base64.b64decode(path.read_bytes().strip())
    if len(key) != 32:
        raise ValueError(f"{path} does not hold a 256-bit key")
    return key
