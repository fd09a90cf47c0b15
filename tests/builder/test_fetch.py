"""builder.fetch against a real HTTP server on 127.0.0.1 whose behaviour each test sets
per path, and against real files, directories, symlinks and FIFOs under tmp_path."""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import socket
import traceback
from collections import Counter
from pathlib import Path

import pytest
import urllib3.util.connection

import builder.fetch as fetch_module
from builder.errors import AssetNotAllowed, AssetTooLarge, DigestMismatch, DownloadFailed
from builder.fetch import Fetcher, FetchPolicy, asset_filename, fetch, redact, register_scheme
from tests.builder.asset_server import Handler, Route, Server, listing

MB = 1024 * 1024
SECRET = "SECRETsig0123"
SAS = f"sv=2023-01-03&se=2030-01-01&sr=b&sp=r&sig={SECRET}"


# --- routes ----------------------------------------------------------------------------

def serve(body: bytes, headers: dict[str, str] | None = None) -> Route:
    return lambda handler, attempt: handler.respond(200, body, headers)


def fail_then_serve(failures: int, body: bytes, status: int = 503, headers: dict[str, str] | None = None) -> Route:
    def route(handler: Handler, attempt: int) -> None:
        if attempt <= failures:
            handler.respond(status, b"try again", headers)
        else:
            handler.respond(200, body)
    return route


def redirect(location: str, status: int = 302) -> Route:
    return lambda handler, attempt: handler.respond(status, headers={"Location": location})


# --- shared fixtures and helpers -------------------------------------------------------

@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def fetcher(sleeps: list[float]) -> Fetcher:
    """A fetcher that records its waits instead of sleeping."""
    return Fetcher(sleep=sleeps.append)


@pytest.fixture
def policy() -> FetchPolicy:
    return FetchPolicy(backoff_seconds=0.01, timeout_seconds=5, retries=3)


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every (host, port) urllib3 opens a connection to; the connection itself is real."""
    seen: list[tuple[str, int]] = []
    real = urllib3.util.connection.create_connection

    def spy(address: tuple[str, int], *args: object, **kwargs: object) -> socket.socket:
        seen.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", spy)
    return seen


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def full_text(exc: BaseException) -> str:
    """The message and the whole printed traceback, causes included."""
    return "".join(traceback.format_exception(exc))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- HTTP: the happy paths -------------------------------------------------------------

def test_http_download_lands_in_dest_with_digest_and_size(server: Server, fetcher: Fetcher,
                                                          policy: FetchPolicy, out: Path) -> None:
    body = b"model weights\n" * 100
    server.routes["/model.pkl"] = serve(body)

    result = fetcher.fetch(server.url("/model.pkl"), out / "model.pkl", policy=policy)

    assert result.path == out / "model.pkl"
    assert (result.sha256, result.size) == (sha(body), len(body))
    assert (out / "model.pkl").read_bytes() == body
    assert listing(out) == ["model.pkl"]


def test_a_body_of_several_chunks_is_copied_whole(server: Server, fetcher: Fetcher, policy: FetchPolicy,
                                                  out: Path) -> None:
    body = os.urandom(3 * MB + 17)
    server.routes["/big.bin"] = serve(body)

    result = fetcher.fetch(server.url("/big.bin"), out / "big.bin", policy=policy, sha256=sha(body))

    assert result.size == len(body)
    assert (out / "big.bin").read_bytes() == body


def test_content_encoding_is_not_undone_so_the_stored_bytes_are_what_is_hashed(
        server: Server, fetcher: Fetcher, policy: FetchPolicy, out: Path) -> None:
    stored = gzip.compress(b"a,b\n1,2\n" * 1000)
    server.routes["/data.csv"] = serve(stored, {"Content-Encoding": "gzip"})

    result = fetcher.fetch(server.url("/data.csv"), out / "data.csv", policy=policy)

    assert (out / "data.csv").read_bytes() == stored
    assert result.sha256 == sha(stored)
    assert server.requests[0][1]["Accept-Encoding"] == "identity"


def test_the_module_level_fetch_retries_with_real_sleeps(server: Server, out: Path) -> None:
    server.routes["/flaky"] = fail_then_serve(2, b"ok")

    result = fetch(server.url("/flaky"), out / "flaky", policy=FetchPolicy(backoff_seconds=0.01, retries=2))

    assert result.size == 2
    assert server.hits["/flaky"] == 3


# --- HTTP: retries ---------------------------------------------------------------------

def test_503_is_retried_with_exponential_backoff(server: Server, fetcher: Fetcher, policy: FetchPolicy,
                                                 out: Path, sleeps: list[float]) -> None:
    server.routes["/flaky"] = fail_then_serve(3, b"finally")

    fetcher.fetch(server.url("/flaky"), out / "flaky", policy=policy)

    assert server.hits["/flaky"] == 4
    assert sleeps == [0.01, 0.02, 0.04]
    assert (out / "flaky").read_bytes() == b"finally"


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(status: int, server: Server, fetcher: Fetcher, policy: FetchPolicy,
                                        out: Path) -> None:
    server.routes["/flaky"] = fail_then_serve(1, b"ok", status=status)

    fetcher.fetch(server.url("/flaky"), out / "flaky", policy=policy)

    assert server.hits["/flaky"] == 2


def test_backoff_is_capped_at_30_seconds(server: Server, fetcher: Fetcher, out: Path,
                                         sleeps: list[float]) -> None:
    server.routes["/down"] = fail_then_serve(99, b"")
    policy = FetchPolicy(backoff_seconds=10, retries=3, timeout_seconds=5)

    with pytest.raises(DownloadFailed):
        fetcher.fetch(server.url("/down"), out / "down", policy=policy)

    assert sleeps == [10, 20, 30]


def test_giving_up_names_the_status_and_the_attempts(server: Server, fetcher: Fetcher, out: Path) -> None:
    server.routes["/down"] = fail_then_serve(99, b"")
    (out / "down").write_bytes(b"previous")

    with pytest.raises(DownloadFailed, match=r"HTTP 503 Service Unavailable, after 3 attempts"):
        fetcher.fetch(server.url("/down"), out / "down", policy=FetchPolicy(retries=2, timeout_seconds=5))

    assert server.hits["/down"] == 3
    assert (out / "down").read_bytes() == b"previous"
    assert listing(out) == ["down"]


@pytest.mark.parametrize(("retry_after", "expected"), [("2", [2.0]), ("0", [0.0]), ("120", [30.0]),
                                                       ("Wed, 21 Oct 2015 07:28:00 GMT", [0.01])])
def test_retry_after_seconds_replace_the_backoff_capped_at_30(
        retry_after: str, expected: list[float], server: Server, fetcher: Fetcher, policy: FetchPolicy,
        out: Path, sleeps: list[float]) -> None:
    server.routes["/busy"] = fail_then_serve(1, b"ok", status=429, headers={"Retry-After": retry_after})

    fetcher.fetch(server.url("/busy"), out / "busy", policy=policy)

    assert sleeps == expected


def test_404_fails_at_once_naming_the_status(server: Server, fetcher: Fetcher, policy: FetchPolicy,
                                             out: Path, sleeps: list[float]) -> None:
    with pytest.raises(DownloadFailed, match=r"/gone: HTTP 404 Not Found$"):
        fetcher.fetch(server.url("/gone"), out / "gone", policy=policy)

    assert server.hits["/gone"] == 1
    assert sleeps == []
    assert listing(out) == []


def test_a_body_cut_short_of_its_content_length_is_retried(server: Server, fetcher: Fetcher,
                                                           policy: FetchPolicy, out: Path) -> None:
    body = os.urandom(100_000)

    def truncated_once(handler: Handler, attempt: int) -> None:
        handler.respond(200, body[:1000] if attempt == 1 else body, content_length=len(body))

    server.routes["/cut"] = truncated_once

    result = fetcher.fetch(server.url("/cut"), out / "cut", policy=policy, sha256=sha(body))

    assert server.hits["/cut"] == 2
    assert result.size == len(body)
    assert listing(out) == ["cut"]


def test_a_body_always_cut_short_fails_after_the_retries(server: Server, fetcher: Fetcher,
                                                         out: Path) -> None:
    server.routes["/cut"] = lambda handler, attempt: handler.respond(200, b"x" * 10, content_length=1000)

    with pytest.raises(DownloadFailed, match=r"after 2 attempts") as caught:
        fetcher.fetch(server.url("/cut"), out / "cut", policy=FetchPolicy(retries=1, timeout_seconds=5))

    assert "10" in str(caught.value)
    assert listing(out) == []


def test_connection_refused_is_retried_then_reported(fetcher: Fetcher, policy: FetchPolicy, out: Path,
                                                     sleeps: list[float]) -> None:
    url = f"http://127.0.0.1:{closed_port()}/model.pkl"

    refused = r"request to 127\.0\.0\.1:\d+ failed: ConnectionRefusedError: .*after 4 attempts"
    with pytest.raises(DownloadFailed, match=refused):
        fetcher.fetch(url, out / "model.pkl", policy=policy)

    assert len(sleeps) == 3


# --- HTTP: size limits -----------------------------------------------------------------

def test_a_content_length_over_the_limit_is_refused_before_the_body(server: Server, fetcher: Fetcher,
                                                                    out: Path) -> None:
    server.routes["/liar"] = lambda handler, attempt: handler.respond(200, b"tiny", content_length=5 * MB)

    with pytest.raises(AssetTooLarge, match=rf"{5 * MB} bytes, more than the limit of {MB}"):
        fetcher.fetch(server.url("/liar"), out / "liar", policy=FetchPolicy(max_bytes=MB, timeout_seconds=5))

    assert server.hits["/liar"] == 1
    assert listing(out) == []


def test_a_body_without_content_length_is_cut_off_at_the_limit(server: Server, fetcher: Fetcher,
                                                               out: Path) -> None:
    def endless(handler: Handler, attempt: int) -> None:
        handler.respond(200, content_length=None)
        for _ in range(4 * 16):
            handler.wfile.write(b"\0" * (64 * 1024))

    server.routes["/endless"] = endless
    (out / "endless").write_bytes(b"previous")

    with pytest.raises(AssetTooLarge, match=rf"more than the limit of {MB} bytes"):
        fetcher.fetch(server.url("/endless"), out / "endless", policy=FetchPolicy(max_bytes=MB, timeout_seconds=5))

    assert server.hits["/endless"] == 1
    assert (out / "endless").read_bytes() == b"previous"
    assert listing(out) == ["endless"]


def test_a_body_exactly_at_the_limit_is_accepted(server: Server, fetcher: Fetcher, out: Path) -> None:
    server.routes["/exact"] = serve(b"x" * 1000)

    result = fetcher.fetch(server.url("/exact"), out / "exact", policy=FetchPolicy(max_bytes=1000))

    assert result.size == 1000


# --- HTTP: redirects and addresses -----------------------------------------------------

def test_redirects_are_followed(server: Server, fetcher: Fetcher, policy: FetchPolicy, out: Path) -> None:
    server.routes["/old"] = redirect("/middle", status=301)
    server.routes["/middle"] = redirect(server.url("/new"), status=307)
    server.routes["/new"] = serve(b"moved")

    fetcher.fetch(server.url("/old"), out / "asset", policy=policy)

    assert (out / "asset").read_bytes() == b"moved"
    assert [server.hits[path] for path in ("/old", "/middle", "/new")] == [1, 1, 1]


def test_more_than_five_redirects_fail(server: Server, fetcher: Fetcher, policy: FetchPolicy, out: Path) -> None:
    server.routes["/loop"] = redirect("/loop")

    with pytest.raises(DownloadFailed, match="more than 5 redirects"):
        fetcher.fetch(server.url("/loop"), out / "loop", policy=policy)

    assert server.hits["/loop"] == 6


def test_a_redirect_to_the_metadata_address_is_refused_without_connecting(
        server: Server, fetcher: Fetcher, policy: FetchPolicy, out: Path,
        connections: list[tuple[str, int]]) -> None:
    server.routes["/evil"] = redirect("http://169.254.169.254/latest/meta-data/iam/")

    with pytest.raises(AssetNotAllowed, match=r"169\.254\.169\.254 is a link-local or cloud metadata address"):
        fetcher.fetch(server.url("/evil"), out / "evil", policy=policy)

    assert connections == [("127.0.0.1", server.port)]
    assert server.hits["/evil"] == 1
    assert listing(out) == []


def test_a_redirect_to_a_file_url_is_refused(server: Server, fetcher: Fetcher, policy: FetchPolicy,
                                             out: Path) -> None:
    server.routes["/evil"] = redirect("file:///etc/passwd")

    with pytest.raises(AssetNotAllowed, match=r"redirected to file:///etc/passwd"):
        fetcher.fetch(server.url("/evil"), out / "evil", policy=policy)


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/",
    "http://169.254.10.1/",
    "http://2852039166/",  # 169.254.169.254 as one number: only resolving reveals it
    "http://[::ffff:169.254.169.254]/",
    "http://[fe80::1]/",
    "http://[fd00:ec2::254]/",
    "http://100.100.100.200/latest/meta-data/",
    "https://169.254.169.254/",
])
def test_link_local_and_metadata_hosts_are_refused_without_connecting(
        url: str, fetcher: Fetcher, policy: FetchPolicy, out: Path, connections: list[tuple[str, int]]) -> None:
    with pytest.raises(AssetNotAllowed, match="link-local or cloud metadata"):
        fetcher.fetch(url, out / "asset", policy=policy)

    assert connections == []
    assert listing(out) == []


def test_allow_link_local_lets_the_connection_be_attempted(fetcher: Fetcher, out: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    attempted: list[tuple[str, int]] = []

    def refuse(address: tuple[str, int], *args: object, **kwargs: object) -> socket.socket:
        attempted.append(address)
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", refuse)
    policy = FetchPolicy(allow_link_local=True, retries=0)

    with pytest.raises(DownloadFailed, match="request to 169.254.169.254 failed"):
        fetcher.fetch("http://169.254.169.254/", out / "asset", policy=policy)

    assert attempted == [("169.254.169.254", 80)]


# --- secrets in query strings ----------------------------------------------------------

def test_a_sas_token_is_sent_but_never_reported(server: Server, fetcher: Fetcher, policy: FetchPolicy,
                                                out: Path) -> None:
    server.routes["/container/model.pkl"] = serve(b"weights")

    fetcher.fetch(server.url(f"/container/model.pkl?{SAS}"), out / "model.pkl", policy=policy)

    assert server.requests[0][0] == f"/container/model.pkl?{SAS}"


@pytest.mark.parametrize("path", ["/gone", "/down"])
def test_http_failures_do_not_reveal_the_sas_token(path: str, server: Server, fetcher: Fetcher,
                                                   policy: FetchPolicy, out: Path) -> None:
    server.routes["/down"] = fail_then_serve(99, b"")

    with pytest.raises(DownloadFailed) as caught:
        fetcher.fetch(server.url(f"{path}?{SAS}"), out / "asset", policy=policy)

    assert server.url(path) in str(caught.value)
    assert SECRET not in full_text(caught.value)


def test_connection_failures_do_not_reveal_the_sas_token(fetcher: Fetcher, policy: FetchPolicy, out: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"http://127.0.0.1:{closed_port()}/container/model.pkl?{SAS}"

    with pytest.raises(DownloadFailed) as caught:
        fetcher.fetch(url, out / "model.pkl", policy=policy)

    assert SECRET not in full_text(caught.value)
    assert SECRET not in caplog.text


def test_debug_logs_do_not_reveal_the_sas_token(server: Server, fetcher: Fetcher, policy: FetchPolicy,
                                                out: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server.routes["/flaky"] = fail_then_serve(1, b"ok")

    fetcher.fetch(server.url(f"/flaky?{SAS}"), out / "flaky", policy=policy)

    assert "/flaky" in caplog.text
    assert SECRET not in caplog.text


def test_a_redirect_to_the_metadata_address_does_not_reveal_its_query(
        server: Server, fetcher: Fetcher, policy: FetchPolicy, out: Path) -> None:
    server.routes["/evil"] = redirect(f"http://169.254.169.254/x?{SAS}")

    with pytest.raises(AssetNotAllowed) as caught:
        fetcher.fetch(server.url(f"/evil?{SAS}"), out / "evil", policy=policy)

    assert SECRET not in full_text(caught.value)


# --- digests ---------------------------------------------------------------------------

def test_a_matching_sha256_is_accepted_in_any_case(server: Server, fetcher: Fetcher, policy: FetchPolicy,
                                                   out: Path) -> None:
    server.routes["/m"] = serve(b"content")

    result = fetcher.fetch(server.url("/m"), out / "m", policy=policy, sha256=sha(b"content").upper())

    assert result.sha256 == sha(b"content")


def test_a_digest_mismatch_names_both_digests_and_leaves_dest_untouched(
        server: Server, fetcher: Fetcher, policy: FetchPolicy, out: Path) -> None:
    server.routes["/m"] = serve(b"tampered")
    (out / "m").write_bytes(b"previous")
    expected = sha(b"original")

    with pytest.raises(DigestMismatch) as caught:
        fetcher.fetch(server.url("/m"), out / "m", policy=policy, sha256=expected)

    assert expected in str(caught.value) and sha(b"tampered") in str(caught.value)
    assert (out / "m").read_bytes() == b"previous"
    assert listing(out) == ["m"]
    assert server.hits["/m"] == 1


@pytest.mark.parametrize("digest", ["", "abc", "g" * 64, sha(b"x") + "0", " " + sha(b"x")[1:], sha(b"x") + "\n"])
def test_a_malformed_sha256_is_refused_before_any_request(digest: str, server: Server, fetcher: Fetcher,
                                                          policy: FetchPolicy, out: Path) -> None:
    with pytest.raises(ValueError, match="64 hexadecimal digits"):
        fetcher.fetch(server.url("/m"), out / "m", policy=policy, sha256=digest)

    assert server.hits == Counter()
    assert listing(out) == []


# --- local files -----------------------------------------------------------------------

@pytest.fixture
def root(tmp_path: Path) -> Path:
    directory = tmp_path / "root"
    (directory / "models").mkdir(parents=True)
    (directory / "models" / "model.pkl").write_bytes(b"local weights")
    return directory


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    directory = tmp_path / "outside"
    directory.mkdir()
    (directory / "secret.txt").write_bytes(b"not yours")
    return directory


def test_a_file_url_under_an_allowed_root_is_copied(root: Path, fetcher: Fetcher, out: Path) -> None:
    policy = FetchPolicy(allowed_roots=(root,))

    result = fetcher.fetch((root / "models" / "model.pkl").as_uri(), out / "model.pkl", policy=policy)

    assert (out / "model.pkl").read_bytes() == b"local weights"
    assert (result.size, result.sha256) == (13, sha(b"local weights"))


def test_a_file_url_is_percent_decoded(root: Path, fetcher: Fetcher, out: Path) -> None:
    (root / "my model.pkl").write_bytes(b"spaced")

    fetcher.fetch(f"file://{root}/my%20model.pkl", out / "model.pkl", policy=FetchPolicy(allowed_roots=(root,)))

    assert (out / "model.pkl").read_bytes() == b"spaced"


def test_file_localhost_is_a_local_file(root: Path, fetcher: Fetcher, out: Path) -> None:
    url = f"file://localhost{root}/models/model.pkl"

    fetcher.fetch(url, out / "model.pkl", policy=FetchPolicy(allowed_roots=(root,)))

    assert (out / "model.pkl").read_bytes() == b"local weights"


def test_a_file_url_outside_the_roots_is_refused(root: Path, outside: Path, fetcher: Fetcher, out: Path) -> None:
    with pytest.raises(AssetNotAllowed, match="outside the allowed file roots"):
        fetcher.fetch((outside / "secret.txt").as_uri(), out / "x", policy=FetchPolicy(allowed_roots=(root,)))

    assert listing(out) == []


def test_no_roots_means_no_local_files(root: Path, fetcher: Fetcher, out: Path) -> None:
    with pytest.raises(AssetNotAllowed, match=r"none configured"):
        fetcher.fetch((root / "models" / "model.pkl").as_uri(), out / "x", policy=FetchPolicy())


def test_a_missing_file_outside_the_roots_reads_as_outside_not_as_missing(root: Path, fetcher: Fetcher,
                                                                          out: Path) -> None:
    with pytest.raises(AssetNotAllowed, match="outside the allowed file roots"):
        fetcher.fetch("file:///nonexistent/x.pkl", out / "x", policy=FetchPolicy(allowed_roots=(root,)))


def test_a_missing_file_under_a_root_fails_to_download(root: Path, fetcher: Fetcher, out: Path) -> None:
    with pytest.raises(DownloadFailed, match="No such file"):
        fetcher.fetch((root / "nope.pkl").as_uri(), out / "x", policy=FetchPolicy(allowed_roots=(root,)))

    assert listing(out) == []


def test_a_symlink_in_a_root_pointing_outside_is_refused(root: Path, outside: Path, fetcher: Fetcher,
                                                         out: Path) -> None:
    (root / "link.txt").symlink_to(outside / "secret.txt")

    with pytest.raises(AssetNotAllowed, match=r"outside/secret\.txt is outside the allowed file roots"):
        fetcher.fetch((root / "link.txt").as_uri(), out / "x", policy=FetchPolicy(allowed_roots=(root,)))


def test_a_symlinked_directory_pointing_outside_is_refused(root: Path, outside: Path, fetcher: Fetcher,
                                                           out: Path) -> None:
    (root / "linked").symlink_to(outside, target_is_directory=True)

    with pytest.raises(AssetNotAllowed, match="outside the allowed file roots"):
        fetcher.fetch((root / "linked" / "secret.txt").as_uri(), out / "x", policy=FetchPolicy(allowed_roots=(root,)))


def test_a_symlink_within_the_root_is_followed(root: Path, fetcher: Fetcher, out: Path) -> None:
    (root / "latest.pkl").symlink_to(root / "models" / "model.pkl")

    fetcher.fetch((root / "latest.pkl").as_uri(), out / "x", policy=FetchPolicy(allowed_roots=(root,)))

    assert (out / "x").read_bytes() == b"local weights"


def test_a_root_given_through_a_symlink_still_matches(root: Path, tmp_path: Path, fetcher: Fetcher,
                                                      out: Path) -> None:
    (tmp_path / "root-link").symlink_to(root, target_is_directory=True)

    fetcher.fetch((root / "models" / "model.pkl").as_uri(), out / "x",
                  policy=FetchPolicy(allowed_roots=(tmp_path / "root-link",)))

    assert (out / "x").read_bytes() == b"local weights"


def test_a_relative_path_resolves_against_base_dir(root: Path, fetcher: Fetcher, out: Path) -> None:
    fetcher.fetch("models/model.pkl", out / "x", policy=FetchPolicy(allowed_roots=(root,)), base_dir=root)

    assert (out / "x").read_bytes() == b"local weights"


def test_base_dir_is_not_an_allowed_root_by_itself(root: Path, fetcher: Fetcher, out: Path) -> None:
    with pytest.raises(AssetNotAllowed, match="outside the allowed file roots"):
        fetcher.fetch("models/model.pkl", out / "x", policy=FetchPolicy(), base_dir=root)


def test_a_relative_path_escaping_with_dot_dot_is_refused(root: Path, outside: Path, fetcher: Fetcher,
                                                          out: Path) -> None:
    with pytest.raises(AssetNotAllowed, match="outside the allowed file roots"):
        fetcher.fetch("../outside/secret.txt", out / "x", policy=FetchPolicy(allowed_roots=(root,)), base_dir=root)

    assert listing(out) == []


def test_a_relative_path_needs_a_base_dir(root: Path, fetcher: Fetcher, out: Path) -> None:
    with pytest.raises(AssetNotAllowed, match="relative path needs a manifest file location"):
        fetcher.fetch("models/model.pkl", out / "x", policy=FetchPolicy(allowed_roots=(root,)))


def test_a_file_url_with_a_host_is_refused(root: Path, fetcher: Fetcher, out: Path) -> None:
    with pytest.raises(AssetNotAllowed, match="cannot name a host"):
        fetcher.fetch(f"file://fileserver{root}/models/model.pkl", out / "x", policy=FetchPolicy(allowed_roots=(root,)))


def test_a_directory_is_not_a_regular_file(root: Path, fetcher: Fetcher, out: Path) -> None:
    with pytest.raises(AssetNotAllowed, match="not a regular file"):
        fetcher.fetch((root / "models").as_uri(), out / "x", policy=FetchPolicy(allowed_roots=(root,)))

    assert listing(out) == []


def test_a_fifo_is_refused_without_blocking(root: Path, fetcher: Fetcher, out: Path) -> None:
    os.mkfifo(root / "pipe")

    with pytest.raises(AssetNotAllowed, match="not a regular file"):
        fetcher.fetch((root / "pipe").as_uri(), out / "x", policy=FetchPolicy(allowed_roots=(root,)))


def test_a_local_file_over_the_limit_is_refused(root: Path, fetcher: Fetcher, out: Path) -> None:
    with pytest.raises(AssetTooLarge, match="13 bytes, more than the limit of 12"):
        fetcher.fetch((root / "models" / "model.pkl").as_uri(), out / "x",
                      policy=FetchPolicy(allowed_roots=(root,), max_bytes=12))

    assert listing(out) == []


def test_a_local_digest_mismatch_leaves_dest_untouched(root: Path, fetcher: Fetcher, out: Path) -> None:
    (out / "x").write_bytes(b"previous")

    with pytest.raises(DigestMismatch):
        fetcher.fetch((root / "models" / "model.pkl").as_uri(), out / "x",
                      policy=FetchPolicy(allowed_roots=(root,)), sha256=sha(b"other"))

    assert (out / "x").read_bytes() == b"previous"
    assert listing(out) == ["x"]


# --- schemes ---------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["ftp://example.com/model.pkl", "data:text/plain;base64,aGk=",
                                 "gopher://example.com/1", "s3://bucket/model.pkl", "C:/models/model.pkl"])
def test_unknown_schemes_are_refused_naming_the_supported_ones(url: str, fetcher: Fetcher, out: Path) -> None:
    with pytest.raises(AssetNotAllowed, match=r"unsupported scheme .* supported are http://, https://, file://"):
        fetcher.fetch(url, out / "x", policy=FetchPolicy())

    assert listing(out) == []


def test_a_registered_scheme_is_fetched_through_its_opener(fetcher: Fetcher, out: Path) -> None:
    opened: list[io.BytesIO] = []

    def opener(parts: object) -> tuple[io.BytesIO, int | None]:
        assert parts.netloc == "models" and parts.path == "/abc" and parts.query == "v=2"  # type: ignore[attr-defined]
        opened.append(io.BytesIO(b"stored model"))
        return opened[-1], 12

    fetcher.register_scheme("store", opener)

    result = fetcher.fetch("store://models/abc?v=2", out / "x", policy=FetchPolicy())

    assert (out / "x").read_bytes() == b"stored model"
    assert result.size == 12
    assert opened[0].closed


def test_a_registered_scheme_obeys_the_size_limit_even_without_a_size(fetcher: Fetcher, out: Path) -> None:
    fetcher.register_scheme("store", lambda parts: (io.BytesIO(b"x" * 2 * MB), None))

    with pytest.raises(AssetTooLarge):
        fetcher.fetch("store://models/abc", out / "x", policy=FetchPolicy(max_bytes=MB))

    assert listing(out) == []


def test_an_opener_io_error_is_a_download_failure(fetcher: Fetcher, out: Path) -> None:
    def opener(parts: object) -> tuple[io.BytesIO, int | None]:
        raise FileNotFoundError(2, "No such file or directory")

    fetcher.register_scheme("store", opener)

    with pytest.raises(DownloadFailed, match=r"store://models/abc: .*No such file"):
        fetcher.fetch("store://models/abc", out / "x", policy=FetchPolicy())


def test_unknown_scheme_message_lists_registered_schemes(fetcher: Fetcher, out: Path) -> None:
    fetcher.register_scheme("store", lambda parts: (io.BytesIO(b""), 0))

    with pytest.raises(AssetNotAllowed, match=r"file://, store://"):
        fetcher.fetch("ftp://example.com/x", out / "x", policy=FetchPolicy())


@pytest.mark.parametrize("scheme", ["http", "HTTPS", "file", "", "1abc", "a b", "store\n"])
def test_built_in_or_malformed_schemes_cannot_be_registered(scheme: str, fetcher: Fetcher) -> None:
    with pytest.raises(ValueError):
        fetcher.register_scheme(scheme, lambda parts: (io.BytesIO(b""), 0))


def test_register_scheme_adds_to_the_default_fetcher(monkeypatch: pytest.MonkeyPatch, out: Path) -> None:
    monkeypatch.setattr(fetch_module, "_default", Fetcher())
    register_scheme("store", lambda parts: (io.BytesIO(b"via default"), None))

    fetch("store://x/y", out / "y", policy=FetchPolicy())

    assert (out / "y").read_bytes() == b"via default"


# --- redact and asset_filename ---------------------------------------------------------

@pytest.mark.parametrize(("url", "expected"), [
    (f"https://acct.blob.core.windows.net/c/model.pkl?{SAS}", "https://acct.blob.core.windows.net/c/model.pkl"),
    ("https://user:pa55@host:8443/a/b.txt#frag", "https://host:8443/a/b.txt"),
    ("https://token@host/a", "https://host/a"),
    ("models/model.pkl?x=1", "models/model.pkl"),
    ("file:///srv/m.pkl", "file:///srv/m.pkl"),
    (f"http://[::1/x?{SAS}", "http://[::1/x"),
    (f"http://user:pa55@[::1/x?{SAS}", "http://[::1/x"),
])
def test_redact(url: str, expected: str) -> None:
    assert redact(url) == expected


@pytest.mark.parametrize(("url", "expected"), [
    (f"https://acct.blob.core.windows.net/c/model.pkl?{SAS}", "model.pkl"),
    ("https://host/a/my_model-v1.2.tar.gz", "my_model-v1.2.tar.gz"),
    ("https://host/a/model%2Dv2.pkl", "model-v2.pkl"),
    ("models/score.py", "score.py"),
    ("file:///srv/models/model.pkl#frag", "model.pkl"),
    ("store://models/abc", "abc"),
])
def test_asset_filename(url: str, expected: str) -> None:
    assert asset_filename(url) == expected


@pytest.mark.parametrize("url", [
    "https://host/", "https://host", "", "https://host/a/..", "https://host/a/.", "https://host/a/%2E%2E",
    "https://host/.bashrc", "https://host/a%2Fb", "https://host/a%5Cb", "https://host/my%20model.pkl",
    "https://host/caf%C3%A9.pkl", "https://host/" + "a" * 256, "https://host/a%00b", "https://host/model.pkl%0A",
])
def test_unsafe_file_names_are_refused(url: str) -> None:
    with pytest.raises(AssetNotAllowed, match="not a usable file name"):
        asset_filename(url)


def test_asset_filename_messages_do_not_reveal_the_sas_token() -> None:
    with pytest.raises(AssetNotAllowed) as caught:
        asset_filename(f"https://acct.blob.core.windows.net/c/?{SAS}")

    assert SECRET not in str(caught.value)


def test_the_longest_file_name_is_accepted() -> None:
    assert asset_filename("https://host/" + "a" * 255) == "a" * 255
