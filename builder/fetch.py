"""Get one asset's bytes to a local file: streamed, size-limited, verified, atomic.

Sources are ``http(s)://`` URLs (Azure Blob SAS URLs included), ``file://`` URLs, plain
paths (relative ones resolved against the manifest's directory) and any scheme added
with :func:`register_scheme`. Whatever the source, the bytes are copied in 1 MiB chunks
into a temporary file next to ``dest`` while their sha256 and count are taken, and the
file is renamed onto ``dest`` only once complete and verified: on any failure ``dest``
is left as it was.

Query strings can hold secrets (a SAS token's ``sig``), so every URL that reaches a
message or a log goes through :func:`redact` first.

An HTTP download ends, one way or another: it has an overall deadline (attempts and
the waits between them included; a wait that would pass it is not made) and a minimum
rate, checked like curl's ``--speed-limit``/``--speed-time``: fewer than
``min_bytes_per_second`` over any ``rate_window_seconds`` fails the attempt, and so does
a server that sends nothing for one window (the socket read timeout is the window).
A stalled server is thus given up within the deadline plus at most one window.

:class:`Fetcher` holds the openers of the extra schemes; :func:`fetch` and
:func:`register_scheme` use one default instance, which is what the builder uses.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import logging
import os
import re
import secrets
import socket
import stat
import time
import urllib.parse
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

import requests
import urllib3

from .errors import AssetNotAllowed, AssetTooLarge, DigestMismatch, DownloadFailed

log = logging.getLogger("moma.builder")

Opener = Callable[[urllib.parse.SplitResult], tuple[BinaryIO, int | None]]

_CHUNK = 1024 * 1024
_HTTP_SCHEMES = ("http", "https")
_BUILTIN_SCHEMES = (*_HTTP_SCHEMES, "file")
_SCHEME_NAME = re.compile(r"[a-z][a-z0-9+.-]*")
_SAFE_FILENAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_MAX_REDIRECTS = 5
_MAX_WAIT_SECONDS = 30.0

_LINK_LOCAL_NETWORKS = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address) for address in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)


@dataclass(frozen=True)
class FetchPolicy:
    allowed_roots: tuple[Path, ...] = ()   # file:// URLs and plain paths must resolve (symlinks followed) under one
    max_bytes: int = 10 * 1024**3
    retries: int = 4                       # extra attempts after the first, for transient failures
    backoff_seconds: float = 0.5           # doubles after each attempt, capped at 30 s
    timeout_seconds: float = 60.0          # connect timeout, and read timeout per socket read
    allow_link_local: bool = False         # link-local and cloud metadata addresses are refused unless True
    deadline_seconds: float = 1800.0       # the whole HTTP fetch, retries and waits included
    min_bytes_per_second: int = 16 * 1024  # slower than this over a rate window fails the attempt
    rate_window_seconds: float = 30.0


@dataclass(frozen=True)
class Fetched:
    path: Path
    sha256: str  # hex
    size: int


def redact(url: str) -> str:
    """The URL without query string, fragment or user info: safe for messages and logs."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return re.sub(r"//[^/?#]*@", "//", re.split(r"[?#]", url, maxsplit=1)[0])
    netloc = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def asset_filename(url: str) -> str:
    """Basename of the URL path (percent-decoded, query ignored), validated as a safe file name:
    [A-Za-z0-9._-], 1..255 chars, not '.' or '..', not starting with '.'; else AssetNotAllowed."""
    try:
        path = urllib.parse.urlsplit(url).path
    except ValueError as exc:
        raise AssetNotAllowed(f"{redact(url)}: not a valid URL ({exc})") from exc
    return check_filename(urllib.parse.unquote(path.rsplit("/", 1)[-1]), f"{redact(url)}: the last path segment")


def check_filename(name: str, what: str = "file name") -> str:
    """``name`` if it is a safe file name: 1 to 255 of A-Z a-z 0-9 . _ -, not starting with '.'."""
    if not _SAFE_FILENAME.fullmatch(name):
        raise AssetNotAllowed(
            f"{what} {name!r} is not a usable file name (1 to 255 of A-Z a-z 0-9 . _ -, not starting with '.')"
        )
    return name


class Fetcher:
    """Fetches assets; holds the openers of schemes beyond http, https and file.

    An opener takes the split URL (query included: it may need it) and returns a readable
    binary stream, which the fetcher closes, and the size when known. It signals a refusal
    with an :class:`~builder.errors.AssetError` and an I/O failure with ``OSError``. Openers
    are not retried, and cannot replace the built-in schemes, whose path and address checks
    must hold whatever is registered.
    """

    def __init__(self, sleep: Callable[[float], None] = time.sleep) -> None:
        self._openers: dict[str, Opener] = {}
        self._sleep = sleep

    def register_scheme(self, scheme: str, opener: Opener) -> None:
        scheme = scheme.lower()
        if not _SCHEME_NAME.fullmatch(scheme):
            raise ValueError(f"{scheme!r} is not a URL scheme name")
        if scheme in _BUILTIN_SCHEMES:
            raise ValueError(f"{scheme}:// is built in and cannot be replaced")
        self._openers[scheme] = opener

    def fetch(self, url: str, dest: Path, *, policy: FetchPolicy, base_dir: Path | None = None,
              sha256: str | None = None, session: requests.Session | None = None) -> Fetched:
        """Copy the asset at ``url`` to ``dest``, checking it against ``policy`` and ``sha256``.

        The scheme, the allowed roots and the digest's format are checked before a
        temporary file is created. ``session`` keeps connections open across fetches
        (one connection and one name lookup for many files); the caller closes it.
        """
        expected = _expected_digest(sha256)
        fill = self._source(url, policy, base_dir, session)
        dest = Path(dest)
        with _Staging(dest, policy.max_bytes, redact(url)) as staging:
            fill(staging)
            staging.commit(expected)
        return Fetched(path=dest, sha256=staging.sha256, size=staging.size)

    def _source(self, url: str, policy: FetchPolicy, base_dir: Path | None,
                session: requests.Session | None) -> Callable[[_Staging], None]:
        parts = _split(url)
        scheme = parts.scheme.lower()
        if scheme in _HTTP_SCHEMES:
            return partial(self._fetch_http, url, policy, session)
        if scheme == "file" or not scheme:
            return partial(_copy_file, _local_path(url, parts, policy, base_dir))
        if scheme in self._openers:
            return partial(_copy_opened, self._openers[scheme], parts)
        supported = ", ".join(f"{name}://" for name in (*_BUILTIN_SCHEMES, *sorted(self._openers)))
        raise AssetNotAllowed(f"{redact(url)}: unsupported scheme {scheme!r}; supported are {supported} "
                              "and paths relative to the manifest")

    def _fetch_http(self, url: str, policy: FetchPolicy, shared: requests.Session | None, staging: _Staging) -> None:
        attempts = max(policy.retries, 0) + 1
        deadline = time.monotonic() + policy.deadline_seconds
        with contextlib.nullcontext(shared) if shared is not None else requests.Session() as session:
            for attempt in range(1, attempts + 1):
                try:
                    _download(session, url, policy, staging, deadline)
                    return
                except _Transient as failure:
                    last = failure
                if attempt < attempts:
                    delay = _delay(policy, attempt, last.retry_after)
                    if time.monotonic() + delay >= deadline:
                        raise _deadline_failure(url, policy, last)
                    log.info("fetching %s failed (%s); attempt %d of %d in %.2f s",
                             redact(url), last.reason, attempt + 1, attempts, delay)
                    staging.reset()
                    self._sleep(delay)
        raise DownloadFailed(f"{redact(url)}: {last.reason}, after {attempts} attempts") from last.cause


_default = Fetcher()


def fetch(url: str, dest: Path, *, policy: FetchPolicy, base_dir: Path | None = None,
          sha256: str | None = None, session: requests.Session | None = None) -> Fetched:
    """:meth:`Fetcher.fetch` on the default fetcher."""
    return _default.fetch(url, dest, policy=policy, base_dir=base_dir, sha256=sha256, session=session)


def register_scheme(scheme: str, opener: Opener) -> None:
    """:meth:`Fetcher.register_scheme` on the default fetcher."""
    _default.register_scheme(scheme, opener)


class _Staging:
    """The temporary file an asset is written to, with its running digest and size.

    Created next to ``dest`` so that :meth:`commit` is one atomic rename; removed on any
    exception leaving the ``with`` block.
    """

    def __init__(self, dest: Path, max_bytes: int, label: str) -> None:
        self.dest = dest
        self.max_bytes = max_bytes
        self.label = label
        self.path = dest.parent / f".{dest.name}.{secrets.token_hex(8)}.part"
        self._hash = hashlib.sha256()
        self.size = 0

    def __enter__(self) -> _Staging:
        self._file = open(self.path, "xb")
        return self

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        self._file.close()
        if exc_type is not None:
            self.path.unlink(missing_ok=True)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def expect_size(self, size: int | None) -> None:
        if size is not None and size > self.max_bytes:
            raise AssetTooLarge(f"{self.label}: {size} bytes, more than the limit of {self.max_bytes}")

    def write_all(self, chunks: Iterable[bytes]) -> None:
        for chunk in chunks:
            self.size += len(chunk)
            if self.size > self.max_bytes:
                raise AssetTooLarge(f"{self.label}: more than the limit of {self.max_bytes} bytes")
            self._hash.update(chunk)
            self._file.write(chunk)

    def reset(self) -> None:
        self._file.seek(0)
        self._file.truncate()
        self._hash = hashlib.sha256()
        self.size = 0

    def commit(self, expected_sha256: str | None) -> None:
        if expected_sha256 is not None and self.sha256 != expected_sha256:
            raise DigestMismatch(f"{self.label}: sha256 is {self.sha256}, expected {expected_sha256}")
        self._file.close()
        os.replace(self.path, self.dest)


def _expected_digest(sha256: str | None) -> str | None:
    if sha256 is None:
        return None
    if not _SHA256.fullmatch(sha256):
        raise ValueError(f"sha256 must be 64 hexadecimal digits, got {sha256!r}")
    return sha256.lower()


def _split(url: str) -> urllib.parse.SplitResult:
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise AssetNotAllowed(f"{redact(url)}: not a valid URL ({exc})") from exc
    return parts


# --- local files -----------------------------------------------------------------------

def _local_path(url: str, parts: urllib.parse.SplitResult, policy: FetchPolicy, base_dir: Path | None) -> Path:
    """The real path of a file:// URL or plain path, refused unless under an allowed root.

    Containment is decided before existence, so that the answer for a path outside the
    roots does not reveal whether it exists.
    """
    if parts.netloc and not (parts.scheme and parts.netloc.lower() == "localhost"):
        raise AssetNotAllowed(f"{redact(url)}: a local path cannot name a host")
    path = Path(urllib.parse.unquote(parts.path))
    if not path.is_absolute():
        if parts.scheme:
            raise AssetNotAllowed(f"{redact(url)}: a file:// URL needs an absolute path")
        if base_dir is None:
            raise AssetNotAllowed(f"{redact(url)}: a relative path needs a manifest file location")
        path = Path(base_dir) / path
    real = path.resolve()
    roots = tuple(Path(root).resolve() for root in policy.allowed_roots)
    if not any(real.is_relative_to(root) for root in roots):
        allowed = ", ".join(str(root) for root in roots) or "none configured"
        raise AssetNotAllowed(f"{redact(url)}: {real} is outside the allowed file roots ({allowed})")
    return real


def _copy_file(path: Path, staging: _Staging) -> None:
    """Copy a regular file. Opened without following a final symlink and without blocking
    (a FIFO would), then checked on the open descriptor, so a swap after the root check
    cannot substitute a link or a device."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise DownloadFailed(f"{staging.label}: cannot open {path}: {exc.strerror}") from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise AssetNotAllowed(f"{staging.label}: {path} is not a regular file")
    with open(fd, "rb") as stream:
        staging.expect_size(info.st_size)
        staging.write_all(_read_chunks(stream, staging.label))


def _copy_opened(opener: Opener, parts: urllib.parse.SplitResult, staging: _Staging) -> None:
    try:
        stream, size = opener(parts)
    except OSError as exc:
        raise DownloadFailed(f"{staging.label}: {exc}") from exc
    with stream:
        staging.expect_size(size)
        staging.write_all(_read_chunks(stream, staging.label))


def _read_chunks(stream: BinaryIO, label: str) -> Iterator[bytes]:
    while True:
        try:
            chunk = stream.read(_CHUNK)
        except OSError as exc:
            raise DownloadFailed(f"{label}: read failed: {exc}") from exc
        if not chunk:
            return
        yield chunk


# --- HTTP ------------------------------------------------------------------------------

class _Transient(Exception):
    """A failure worth another attempt. ``reason`` never contains a query string."""

    def __init__(self, reason: str, retry_after: float | None = None, cause: BaseException | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.cause = cause


def _download(session: requests.Session, url: str, policy: FetchPolicy, staging: _Staging,
              deadline: float) -> None:
    """One attempt: follow redirects by hand, checking each hop's address, then stream the body.
    A failure once the deadline has passed is final."""
    current = url
    try:
        for _ in range(_MAX_REDIRECTS + 1):
            _check_address(current, policy)
            read_timeout = _read_timeout(policy, deadline)
            with _get(session, current, policy, read_timeout) as response:
                if response.status_code in _REDIRECT_STATUSES:
                    current = _redirect_target(current, response)
                    continue
                _check_status(url, response)
                _stream_body(response, staging, _Pace(policy, deadline, read_timeout))
                return
    except _Transient as failure:
        if time.monotonic() >= deadline:
            raise _deadline_failure(url, policy, failure) from failure.cause
        raise
    raise DownloadFailed(f"{redact(url)}: more than {_MAX_REDIRECTS} redirects")


def _read_timeout(policy: FetchPolicy, deadline: float) -> float:
    """The wait for the headers and for each socket read: nothing for a whole rate
    window is already too slow, and no wait goes past the deadline."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _Transient("the deadline passed before the request")
    return min(policy.timeout_seconds, policy.rate_window_seconds, remaining)


def _deadline_failure(url: str, policy: FetchPolicy, last: "_Transient") -> DownloadFailed:
    return DownloadFailed(f"{redact(url)}: not complete within the download deadline of "
                          f"{policy.deadline_seconds:g} s ({last.reason})")


class _Pace:
    """Checks a body's progress after each read: the deadline, and the minimum rate over
    each rate window."""

    def __init__(self, policy: FetchPolicy, deadline: float, read_timeout: float) -> None:
        self.policy, self.deadline, self.read_timeout = policy, deadline, read_timeout
        self.window_start, self.window_bytes = time.monotonic(), 0

    def advance(self, received: int, total: int) -> None:
        now = time.monotonic()
        if now >= self.deadline:
            raise _Transient(f"{total} bytes received when it passed")
        self.window_bytes += received
        elapsed = now - self.window_start
        if elapsed < self.policy.rate_window_seconds:
            return
        if self.window_bytes < self.policy.min_bytes_per_second * elapsed:
            raise _Transient(f"slower than {self.policy.min_bytes_per_second} bytes/s: "
                             f"{self.window_bytes} bytes in {elapsed:.1f} s")
        self.window_start, self.window_bytes = now, 0


def _check_address(url: str, policy: FetchPolicy) -> None:
    """Refuse a host that resolves to a link-local or cloud metadata address.

    Every address the name resolves to is checked, since the connection may use any.
    Loopback and private addresses are allowed. The connection resolves the name again:
    an answer that changes in between (DNS rebinding) is not caught here.
    """
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname:
        raise AssetNotAllowed(f"{redact(url)}: the URL names no host")
    if policy.allow_link_local:
        return
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    try:
        addresses = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if exc.errno == socket.EAI_AGAIN:
            raise _Transient(f"cannot resolve {parts.hostname}: {exc.strerror}", cause=exc) from exc
        raise DownloadFailed(f"{redact(url)}: cannot resolve {parts.hostname}: {exc.strerror}") from exc
    for *_, sockaddr in addresses:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if _forbidden(address):
            resolved = "is" if str(address) == parts.hostname else f"resolves to {address},"
            raise AssetNotAllowed(f"{redact(url)}: {parts.hostname} {resolved} a link-local or cloud metadata "
                                  "address (allow_link_local is off)")


def _forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address in _METADATA_ADDRESSES or any(address in network for network in _LINK_LOCAL_NETWORKS)


def _get(session: requests.Session, url: str, policy: FetchPolicy, read_timeout: float) -> requests.Response:
    """Send the request, without following redirects.

    ``Accept-Encoding: identity`` and reading the raw stream keep the bytes exactly as
    stored: what a digest was taken of, and what ``max_bytes`` limits.

    Messages from requests can contain the full URL (``Max retries exceeded with url:
    /path?sig=...``), so failures are described, and chained, by their underlying cause.
    """
    try:
        return session.get(url, stream=True, allow_redirects=False, headers={"Accept-Encoding": "identity"},
                           timeout=(min(policy.timeout_seconds, read_timeout), read_timeout))
    except requests.exceptions.SSLError as exc:
        cause = _underlying(exc)
        raise DownloadFailed(f"{redact(url)}: TLS failure: {_describe(cause)}") from cause
    except requests.exceptions.ReadTimeout as exc:
        raise _Transient(f"nothing received for {read_timeout:.1f} s while waiting for the headers",
                         cause=_underlying(exc)) from None
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        cause = _underlying(exc)
        raise _Transient(f"request to {urllib.parse.urlsplit(url).netloc.rpartition('@')[2]} failed: "
                         f"{_describe(_root(cause))}", cause=cause) from None
    except requests.exceptions.RequestException as exc:
        cause = _underlying(exc)
        raise DownloadFailed(f"{redact(url)}: request failed: {_describe(cause)}") from cause


def _underlying(exc: BaseException) -> BaseException:
    """The urllib3 or socket error under a requests exception; its text has no URL path."""
    while True:
        inner = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else None
        if isinstance(inner, urllib3.exceptions.MaxRetryError) and inner.reason is not None:
            inner = inner.reason
        if inner is None:
            return exc
        exc = inner


def _root(exc: BaseException) -> BaseException:
    """The first error of a chain: the socket error under urllib3's wrapping, say."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def _describe(exc: BaseException) -> str:
    text = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _redirect_target(current: str, response: requests.Response) -> str:
    location = response.headers.get("Location")
    if not location:
        raise DownloadFailed(f"{redact(current)}: HTTP {response.status_code} redirect without a Location")
    target = urllib.parse.urljoin(current, location)
    scheme = _split(target).scheme.lower()
    if scheme not in _HTTP_SCHEMES:
        raise AssetNotAllowed(f"{redact(current)}: redirected to {redact(target)}; only http:// and https:// "
                              "redirects are followed")
    return urllib.parse.urldefrag(target).url


def _check_status(url: str, response: requests.Response) -> None:
    status = response.status_code
    if 200 <= status < 300 and status != 206:
        return
    reason = f"HTTP {status} {response.reason or ''}".rstrip()
    if status in _TRANSIENT_STATUSES:
        raise _Transient(reason, retry_after=_retry_after(response))
    raise DownloadFailed(f"{redact(url)}: {reason}")


def _retry_after(response: requests.Response) -> float | None:
    """Retry-After in its seconds form; the HTTP-date form falls back to the backoff."""
    value = response.headers.get("Retry-After", "").strip()
    return float(value) if value.isdigit() else None


def _stream_body(response: requests.Response, staging: _Staging, pace: _Pace) -> None:
    length = _content_length(response)
    staging.expect_size(length)
    try:
        staging.write_all(_paced_chunks(response, staging, pace))
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise _Transient(f"nothing received for {pace.read_timeout:.1f} s after {staging.size} bytes",
                         cause=exc) from None
    except urllib3.exceptions.HTTPError as exc:
        raise _Transient(f"connection broken after {staging.size} bytes: {_describe(exc)}", cause=exc) from None
    if length is not None and staging.size < length:
        raise _Transient(f"body ended after {staging.size} of {length} bytes")


def _paced_chunks(response: requests.Response, staging: _Staging, pace: _Pace) -> Iterator[bytes]:
    """What each socket read brings (``read1``: a full chunk would wait for all of it, so
    a dribbling server would never be checked), the pace checked after each."""
    while chunk := response.raw.read1(_CHUNK, decode_content=False):
        yield chunk
        pace.advance(len(chunk), staging.size)


def _content_length(response: requests.Response) -> int | None:
    try:
        length = int(response.headers["Content-Length"])
    except (KeyError, ValueError):
        return None
    return length if length >= 0 else None


def _delay(policy: FetchPolicy, attempt: int, retry_after: float | None) -> float:
    """Seconds before the next attempt: the server's Retry-After when it sent one, else
    exponential backoff; never more than 30 s."""
    if retry_after is None:
        retry_after = policy.backoff_seconds * 2 ** (attempt - 1)
    return min(retry_after, _MAX_WAIT_SECONDS)


class _RedactQueries(logging.Filter):
    """urllib3 logs each request's path and query at DEBUG level; a SAS token is a secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(arg.split("?", 1)[0] if isinstance(arg, str) else arg for arg in record.args)
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_RedactQueries())
