"""Where a request ends (runtime/server/framing.py): as gunicorn's parser frames every request
it accepts; whole at its head when gunicorn would refuse the framing; caps refused."""

from __future__ import annotations

import pytest

from runtime.server import gthread
from runtime.server.framing import Refused, RequestFrame

CHUNKED = b"POST /score HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"


def _end(data: bytes, max_head: int = 65536, max_body: int = 1 << 20) -> int | None:
    return RequestFrame(max_head, max_body).end(data)


WHOLE = 0  # the request ends with the data


@pytest.mark.parametrize("data, after", [  # after: bytes past the end (None: not whole)
    (b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n", WHOLE),
    (b"GET /livez HTTP/1.1\r\nHost: x\r\n", None),
    (b"POST /score HTTP/1.1\r\nContent-Length: 4\r\n\r\n{}", None),
    (b"POST /score HTTP/1.1\r\nContent-Length: 4\r\n\r\n{\"\"}", WHOLE),
    (b"POST /score HTTP/1.1\r\ncontent-length:  2 \r\n\r\n{}GET / HTTP/1.1", 14),
    (CHUNKED + b"2\r\n{}\r\n0\r\n\r\n", WHOLE),
    (CHUNKED + b"2;a=b\r\n{}\r\n0\r\nX-T: 1\r\n\r\nGET", 3),
    (CHUNKED + b"2\r\n{}\r\n0\r\nX-T: 1\r\n", None),
    (CHUNKED + b"2\r\n{", None),
    (b"POST /score HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", WHOLE),
    (b"POST /score HTTP/1.1\r\ntransfer-encoding:\r\n  chunked\r\n\r\n0\r\n\r\n", WHOLE),
    # framings gunicorn refuses: whole at the head (its parser answers 400 from the buffer)
    (b"POST /score HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}", 2),
    (b"POST /score HTTP/1.1\r\nContent-Length: -2\r\n\r\n{}", 2),
    (b"POST /score HTTP/1.1\r\nContent-Length : 2\r\n\r\n{}", 2),
    (b"POST /score HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", WHOLE),
    (b"POST /score HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", WHOLE),
    (b"POST /score HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", WHOLE),
    (CHUNKED + b"0x2\r\n{}\r\n0\r\n\r\n", WHOLE),  # the chunk size: whatever came
    (b"GET /x?content-length HTTP/1.1\r\nHost: x\r\n\r\n", WHOLE),
])
def test_where_a_request_ends(data, after):
    assert _end(data) == (None if after is None else len(data) - after)


def test_a_chunked_body_is_scanned_as_it_comes():
    frame = RequestFrame(65536, 1 << 20)
    data = CHUNKED + b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
    seen = [frame.end(data[:size]) for size in range(len(CHUNKED), len(data) + 1)]
    assert seen[:-1] == [None] * (len(seen) - 1) and seen[-1] == len(data)


def test_expect_100_continue_is_noticed_on_http_1_1_only():
    frame = RequestFrame(65536, 100)
    assert frame.end(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n") is None
    assert frame.expects_continue and frame.head_end is not None
    old = RequestFrame(65536, 100)
    assert old.end(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n") is None
    assert not old.expects_continue


@pytest.mark.parametrize("data, status", [
    (b"GET / HTTP/1.1\r\nX: " + b"a" * 200, 431),
    (b"GET / HTTP/1.1\r\nX: " + b"a" * 200 + b"\r\n\r\n", 431),
    (b"POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n", 413),
    (CHUNKED + b"40\r\n", None),
    (CHUNKED + b"40\r\n" + b"a" * 64 + b"\r\n40\r\n" + b"a" * 64 + b"\r\n", 413),
    (CHUNKED + b"0\r\nX: " + b"a" * 200, 431),
])
def test_caps(data, status):
    frame = RequestFrame(128, 100)
    if status is None:
        assert frame.end(data) is None
        return
    with pytest.raises(Refused) as refused:
        frame.end(data)
    assert refused.value.status == status


@pytest.mark.parametrize("data, complete", [
    (b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n", True),
    (b"POST /score HTTP/1.1\r\nContent-Length: 4\r\n\r\n{}", False),
    (b"POST /score HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n", False),
])
def test_request_complete_for_the_unbuffered_inline_path(data, complete):
    assert gthread.request_complete(data) is complete
