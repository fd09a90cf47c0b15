"""Slow downloads end: an overall deadline and a minimum rate, against a real HTTP server on
127.0.0.1 that dribbles a few bytes a second or stalls after its headers."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from builder.assets import fetch_manifest
from builder.config import BuilderConfig
from builder.errors import DownloadFailed
from builder.fetch import Fetcher, FetchPolicy
from builder.manifest import parse_manifest
from tests.builder.asset_server import Handler, Route, Server, listing

BODY_SIZE = 1024 * 1024


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    """Set at teardown: the slow routes stop writing and let their connection go."""
    event = threading.Event()
    yield event
    event.set()


def dribble(stop: threading.Event, bytes_per_tick: int = 5, tick: float = 0.2) -> Route:
    """Headers at once, then a few bytes every tick: each read gets something, so no
    per-read timeout ever fires."""
    def route(handler: Handler, attempt: int) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(BODY_SIZE))
        handler.end_headers()
        while not stop.wait(tick):
            handler.wfile.write(b"x" * bytes_per_tick)
            handler.wfile.flush()
    return route


def stall_after_headers(stop: threading.Event) -> Route:
    def route(handler: Handler, attempt: int) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(BODY_SIZE))
        handler.end_headers()
        handler.wfile.write(b"first bytes")
        handler.wfile.flush()
        stop.wait(120)
    return route


def stall_before_headers(stop: threading.Event) -> Route:
    return lambda handler, attempt: stop.wait(120)


def timed_failure(fetcher: Fetcher, url: str, dest: Path, policy: FetchPolicy) -> tuple[str, float]:
    started = time.monotonic()
    with pytest.raises(DownloadFailed) as caught:
        fetcher.fetch(url, dest, policy=policy)
    return str(caught.value), time.monotonic() - started


def test_a_dribbling_server_fails_the_minimum_rate(server: Server, stop: threading.Event, out: Path) -> None:
    server.routes["/weights.bin"] = dribble(stop)
    policy = FetchPolicy(retries=0, min_bytes_per_second=1024, rate_window_seconds=1, deadline_seconds=60)

    message, seconds = timed_failure(Fetcher(), server.url("/weights.bin"), out / "weights.bin", policy)

    assert message.startswith(f"{server.url('/weights.bin')}: slower than 1024 bytes/s: ")
    assert "after 1 attempts" in message
    assert seconds < 1 + 5, "one rate window, and some slack for a loaded machine"
    assert listing(out) == []


def test_a_dribbling_server_is_cut_off_at_the_deadline(server: Server, stop: threading.Event, out: Path) -> None:
    server.routes["/weights.bin"] = dribble(stop, bytes_per_tick=4096, tick=0.1)  # 40 KiB/s: over the rate
    policy = FetchPolicy(retries=5, backoff_seconds=0.01, min_bytes_per_second=1024, rate_window_seconds=1,
                         deadline_seconds=2)

    message, seconds = timed_failure(Fetcher(), server.url("/weights.bin"), out / "weights.bin", policy)

    assert message.startswith(f"{server.url('/weights.bin')}: not complete within the download deadline of 2 s")
    assert 2 <= seconds < 2 + 5
    assert server.hits["/weights.bin"] == 1, "the deadline is not retried"
    assert listing(out) == []


@pytest.mark.parametrize("route", [stall_after_headers, stall_before_headers], ids=["after-headers", "before-headers"])
def test_a_stalled_server_fails_within_the_deadline_retries_included(
        route, server: Server, stop: threading.Event, out: Path) -> None:
    server.routes["/weights.bin"] = route(stop)
    policy = FetchPolicy(retries=10, backoff_seconds=0.01, min_bytes_per_second=1024, rate_window_seconds=1,
                         deadline_seconds=3, timeout_seconds=60)

    message, seconds = timed_failure(Fetcher(), server.url("/weights.bin"), out / "weights.bin", policy)

    assert "not complete within the download deadline of 3 s" in message
    assert re.search(r"\(nothing received for [01]\.\d s (after 11 bytes|while waiting for the headers)\)$", message)
    assert 3 <= seconds < 3 + 5
    assert 2 <= server.hits["/weights.bin"] <= 4, "each attempt gives up after one quiet rate window"
    assert listing(out) == []


def test_a_fast_download_is_not_disturbed(server: Server, out: Path) -> None:
    body = bytes(range(256)) * 4096
    server.routes["/weights.bin"] = lambda handler, attempt: handler.respond(200, body)
    policy = FetchPolicy(min_bytes_per_second=1024, rate_window_seconds=0.001, deadline_seconds=30)

    assert Fetcher().fetch(server.url("/weights.bin"), out / "weights.bin", policy=policy).size == len(body)


def test_the_error_names_the_asset_and_the_settings_apply(server: Server, stop: threading.Event,
                                                          tmp_path: Path) -> None:
    server.routes["/weights.bin"] = dribble(stop)
    spec = parse_manifest({
        "name": "slow", "driverProgram": "driver", "targetRuntime": {"runtimeType": "Python"},
        "assets": [{"id": "driver", "url": str(tmp_path / "score.py")},
                   {"id": "weights", "url": server.url("/weights.bin")}],
    })
    (tmp_path / "score.py").write_text("def init(): pass\ndef run(x): return x\n")
    config = BuilderConfig.from_env({"MOMA_HOME": str(tmp_path / "home"), "MOMA_DOWNLOAD_DEADLINE_SECONDS": "2",
                                     "MOMA_DOWNLOAD_MIN_BYTES_PER_SECOND": "1"}).with_file_roots(tmp_path)
    started = time.monotonic()

    with pytest.raises(DownloadFailed) as caught:
        fetch_manifest(spec, tmp_path / "work", config)

    assert str(caught.value).startswith(f"assets[1] (weights): {server.url('/weights.bin')}: not complete within "
                                        "the download deadline of 2 s")
    assert time.monotonic() - started < 2 + 5


@pytest.mark.parametrize("name", ["MOMA_DOWNLOAD_DEADLINE_SECONDS", "MOMA_DOWNLOAD_MIN_BYTES_PER_SECOND"])
def test_bad_download_settings_are_refused_by_name(name: str) -> None:
    with pytest.raises(ValueError, match=f"{name} must be a positive integer"):
        BuilderConfig.from_env({name: "0"})


def test_download_settings_default_to_30_minutes_and_16_kib_per_second() -> None:
    config = BuilderConfig.from_env({})
    assert (config.download_deadline_seconds, config.download_min_bytes_per_second) == (1800, 16384)
