"""Service keys at rest: encrypted with AES-256-GCM under a key kept outside the store
(``$MOMA_HOME/secret.key``, mode 0600, or ``MOMA_SECRET_KEY_FILE``), so a copy of the
database alone does not reveal them. Every worker and API process of one installation
must see the same key file."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import MomaError

_PREFIX = "v1:"


def new_service_key() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    """What the scoring runtime compares against: sha256 hex of the key."""
    return hashlib.sha256(key.encode()).hexdigest()


class KeyCipher:
    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file
        self._aead = AESGCM(self._load_or_create())

    def encrypt(self, plaintext: str, context: str) -> str:
        """``context`` (e.g. the service id) is bound to the ciphertext, so a value cannot be
        moved to another row and still decrypt."""
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def decrypt(self, ciphertext: str, context: str) -> str:
        if not ciphertext.startswith(_PREFIX):
            raise MomaError("a stored service key has an unknown format")
        raw = base64.urlsafe_b64decode(ciphertext[len(_PREFIX):])
        try:
            return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except InvalidTag as exc:
            raise MomaError(f"cannot decrypt service keys with {self.key_file}: is it the key this store was "
                            "written with?") from exc

    def _load_or_create(self) -> bytes:
        try:
            key = self._read()
        except FileNotFoundError:
            key = self._create()
        if len(key) != 32:
            raise MomaError(f"{self.key_file} does not hold a 256-bit key")
        return key

    def _read(self) -> bytes:
        return base64.b64decode(self.key_file.read_bytes().strip())

    def _create(self) -> bytes:
        """A new key, written whole (mode 0600) and then linked into place: of the
        processes of an installation that start together, one makes the key and the
        others read it, never a half-written file."""
        self.key_file.parent.mkdir(parents=True, exist_ok=True)
        key = AESGCM.generate_key(bit_length=256)
        descriptor, temporary = tempfile.mkstemp(dir=self.key_file.parent, prefix=".secret-key-")
        try:
            with os.fdopen(descriptor, "wb") as out:
                out.write(base64.b64encode(key) + b"\n")
            os.link(temporary, self.key_file)
        except FileExistsError:
            return self._read()
        finally:
            os.unlink(temporary)
        return key
