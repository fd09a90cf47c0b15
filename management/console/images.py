"""Images: the list, an image's state, labels and build log (streamed live as server-sent
events while the worker writes it), and "create service" from a built image."""

from __future__ import annotations

import threading
import time
from typing import Any, Iterator

from flask import Response, redirect, render_template, request, url_for

from .api_client import Api, ApiError, Scope, fixable, next_token
from .auth import account_blueprint, api, scope

blueprint = account_blueprint("images")
PAGE_SIZE = 50
FINAL_STATES = ("Succeeded", "Failed", "Cancelled")
LOG_TAIL_BYTES = 64 * 1024  # of the log rendered in the page; the stream goes on from there
STREAM_SECONDS = 30  # one stream's length; the browser reconnects where it stopped (Last-Event-ID)
STREAM_POLL_SECONDS = 0.5
MAX_STREAMS = 4  # open streams per process; more wait for a free one (each holds a server thread)
_streams = threading.BoundedSemaphore(MAX_STREAMS)


@blueprint.get("/images")
def images() -> str:
    page = api().get(scope().path("images"), count=PAGE_SIZE, **{"$skipToken": request.args.get("page")})
    return render_template("images.html", images=page["value"], next_page=next_token(page),
                           first=not request.args.get("page"))


@blueprint.get("/images/<image_id>")
def image(image_id: str, error: ApiError | None = None) -> Any:
    found = api().get(scope().path("images", image_id))
    log, offset = build_log(api(), scope(), image_id, -LOG_TAIL_BYTES)
    labels, labels_error = {}, None
    if found["creationState"] == "Succeeded":
        try:
            labels = api().get(scope().path("console", "images", image_id, "labels"))
        except ApiError as exc:
            labels_error = exc
    computes = api().get(scope().path("computes"))["value"] if found["creationState"] == "Succeeded" else []
    body = render_template("image.html", image=found, log=log, offset=offset, labels=labels,
                           labels_error=labels_error, computes=computes, error=error,
                           final=found["creationState"] in FINAL_STATES,
                           service_name=request.form.get("name", found["name"]))
    return (body, error.status) if error else body


@blueprint.get("/images/<image_id>/log")
def log_stream(image_id: str) -> Response:
    """The build log from byte ``offset`` (or the ``Last-Event-ID`` the browser resumes
    from), as ``log`` events, ``state`` events when the image's state changes, and an
    ``end`` event with its final state."""
    caller, where = api(), scope()
    caller.get(where.path("images", image_id))  # 404 before any stream
    offset = _offset(request.headers.get("Last-Event-ID") or request.args.get("offset") or "0")
    return Response(_events(caller, where, image_id, offset), mimetype="text/event-stream",
                    headers={"X-Accel-Buffering": "no"})


@blueprint.post("/images/<image_id>/deploy")
def deploy(image_id: str) -> Any:
    """Create a service from this image; its page follows the deployment."""
    body: dict[str, Any] = {"name": request.form.get("name", "").strip(), "imageId": image_id,
                            "computeResource": {"id": request.form.get("compute") or "local", "type": "Cluster"}}
    try:
        answer = api().call("POST", scope().path("services"), json=body)
    except ApiError as exc:
        if not fixable(exc):
            raise
        return image(image_id, error=exc)
    return redirect(url_for("services.service", service_id=api().created(scope(), answer)), 303)


def build_log(caller: Api, where: Scope, image_id: str, start: int, whole_lines: bool = True) -> tuple[str, int]:
    """The log from byte ``start`` (negative: about that many bytes before its end, from a
    line's start) and the offset after what was returned. With ``whole_lines``, a line
    still being written waits for the next call."""
    wanted = f"bytes={start}" if start < 0 else f"bytes={start}-"
    answer = caller.call("GET", where.path("images", image_id, "buildLog"), headers={"Range": wanted},
                         accept=(404, 416))
    if answer.status == 416 and start < 0:  # a log shorter than the tail asked for
        return build_log(caller, where, image_id, 0, whole_lines)
    if answer.status in (404, 416):  # no log yet, or nothing new
        return "", max(start, 0)
    data, first = answer.body, 0
    if answer.status == 206:
        first = int(answer.headers["Content-Range"].split()[1].split("-")[0])
    elif start > 0:  # the whole file came
        data, first = data[start:], start
    if start < 0 and first > 0:
        cut = data.find(b"\n") + 1
        data, first = data[cut:], first + cut
    if whole_lines:
        data = data[:data.rfind(b"\n") + 1]
    return data.decode(errors="replace"), first + len(data)


def _events(caller: Api, where: Scope, image_id: str, offset: int) -> Iterator[str]:
    if not _streams.acquire(blocking=False):
        yield "retry: 2000\n\n"  # busy: the browser asks again in 2 s
        return
    try:  # an API error ends the stream; the browser's reconnection shows what is wrong
        yield "retry: 1000\n\n"
        deadline, shown = time.monotonic() + STREAM_SECONDS, ""
        while True:
            state = caller.get(where.path("images", image_id))["creationState"]
            if state != shown and state not in FINAL_STATES:
                yield _event("state", state, offset)
                shown = state
            text, offset = build_log(caller, where, image_id, offset)
            if text:
                yield _event("log", text, offset)
            if state in FINAL_STATES:
                rest, offset = build_log(caller, where, image_id, offset, whole_lines=False)
                if rest:
                    yield _event("log", rest, offset)
                yield _event("end", state, offset)
                return
            if time.monotonic() > deadline:
                return
            time.sleep(STREAM_POLL_SECONDS)
    except ApiError:
        return
    finally:
        _streams.release()


def _event(name: str, text: str, offset: int) -> str:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n").split("\n")
    data = "".join(f"data: {line}\n" for line in lines)
    return f"event: {name}\nid: {offset}\n{data}\n"


def _offset(raw: str) -> int:
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 16 else 0
