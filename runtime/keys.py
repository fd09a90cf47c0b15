"""Bearer keys: a mounted file of sha256 key hashes, re-read when it changes.

The file holds one lowercase or uppercase hex sha256 digest per line (blank lines and
``#`` comments ignored); a presented key is valid when sha256(key) equals any of them,
so the primary and the secondary key both work. The runtime never sees the keys.

Cost per request: one ``monotonic()`` comparison, one sha256 and a constant-time
comparison with every hash. The file is ``stat()``-ed at most once per
``check_interval`` seconds per worker process (on the first request after the interval
ran out), and re-read only when its inode, size, mtime or ctime changed, so a
regenerated key takes effect, and the old one stops working, within about one interval.
A missing or unreadable file accepts no key at all (fail closed).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import threading
import time
from collections.abc import Callable

log = logging.getLogger("moma.runtime")

_HEX = frozenset("0123456789abcdef")


def parse_key_hashes(text: str) -> tuple[list[bytes], list[str]]:
    """Digests (32 bytes each) from the file's text, and a list of problems found."""
    digests: list[bytes] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip().lower()
        if not line:
            continue
        if line.startswith("sha256:"):
            line = line[len("sha256:"):]
        if len(line) != 64 or not _HEX.issuperset(line):
            problems.append(f"line {number}: not a sha256 hex digest")
            continue
        digest = bytes.fromhex(line)
        if digest not in digests:
            digests.append(digest)
    return digests, problems


def hash_key(key: str) -> str:
    """The line to write into a key file for ``key``."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


class KeyRing:
    """The valid key hashes, kept in step with the key file."""

    def __init__(self, path: str, check_interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.check_interval = check_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._signature: tuple[int, ...] | None = None
        self._digests: tuple[bytes, ...] = ()
        self._next_check = 0.0
        self._missing = False
        self._refresh(clock())

    @property
    def count(self) -> int:
        return len(self._digests)

    def check(self, authorization: str | None) -> bool:
        """True when the header carries a valid key. Constant time in the key."""
        now = self._clock()
        if now >= self._next_check:
            self._refresh(now)
        token = bearer_token(authorization)
        if token is None:
            return False
        presented = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        ok = False
        for digest in self._digests:  # no early exit: time depends only on the count
            ok |= hmac.compare_digest(presented, digest)
        return ok

    def _refresh(self, now: float) -> None:
        with self._lock:
            if now < self._next_check:
                return  # another thread refreshed meanwhile
            try:
                st = os.stat(self.path)
                signature = (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            except OSError as exc:
                signature = None
                if not self._missing:  # log once per disappearance, not every interval
                    log.warning("key file %s unreadable (%s): no key is accepted",
                                self.path, exc.strerror)
                self._digests = ()
            self._missing = signature is None
            if signature is not None and signature != self._signature:
                self._load()
            self._signature = signature
            self._next_check = now + self.check_interval

    def _load(self) -> None:
        try:
            with open(self.path, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        except OSError as exc:
            log.warning("key file %s unreadable (%s): no key is accepted",
                        self.path, exc.strerror)
            self._digests = ()
            return
        digests, problems = parse_key_hashes(text)
        for problem in problems:
            log.warning("key file %s %s; ignored", self.path, problem)
        if not digests:
            log.warning("key file %s holds no key hash: no key is accepted", self.path)
        self._digests = tuple(digests)
        log.info("loaded %d key hash(es) from %s", len(digests), self.path)
