"""One scoring call: request body -> run() arguments -> admission -> run() -> body.

Without a schema run() gets the raw body as text (a GET's query arguments as a JSON
object's text); with one it gets keyword arguments built by ``schema.py``. run() is
called inline on the request thread unless ``SCORING_TIMEOUT_MS`` is set; then it runs
on a small per-worker pool and the request waits at most that long. Either way the
admission slot is released by the code that ends the call, so a timed-out call keeps
its slot until run() really returns.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar, cast

from .admission import Admission
from .encoding import encode_output
from .errors import BadInput, BadOutput, DriverError, Overloaded, ScoringTimeout
from .metrics import Metrics
from .schema import ServiceSchema

log = logging.getLogger("moma.runtime")

Arguments = tuple[tuple[Any, ...], dict[str, Any]]
Encoded = TypeVar("Encoded")


TOO_DEEP = "JSON nested too deeply"


def _query_value(name: str, text: str) -> Any:
    """A query argument as JSON when it parses (``?x=1`` -> 1), else as text."""
    try:
        return json.loads(text)
    except ValueError:
        return text
    except RecursionError:
        raise BadInput(f"query argument {name!r}: {TOO_DEEP}") from None


def _driver_message(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Scorer:
    def __init__(self, schema: ServiceSchema | None, admission: Admission, metrics: Metrics,
                 timeout_ms: int, pool_size: int) -> None:
        self.schema = schema
        self.admission = admission
        self.metrics = metrics
        self.limited = admission.limit > 0
        self.timeout_s = timeout_ms / 1000.0 if timeout_ms else None
        self.pool_size = pool_size
        self._pool: ThreadPoolExecutor | None = None
        self.run: Callable[..., Any] | None = None  # set once the driver is loaded

    # -- arguments --------------------------------------------------------------------
    def from_body(self, raw: bytes) -> Arguments:
        if self.schema is None:
            try:
                return (raw.decode("utf-8"),), {}
            except UnicodeDecodeError as exc:
                raise BadInput(f"the request body is not UTF-8: {exc.reason}") from None
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise BadInput(f"the request body is not valid JSON: {exc}") from None
        except RecursionError:
            raise BadInput(f"the request body is {TOO_DEEP}") from None
        return (), self.schema.arguments(body)

    def from_query(self, args: Mapping[str, str]) -> Arguments:
        document = {key: _query_value(key, value) for key, value in args.items()}
        if self.schema is None:
            try:
                return (json.dumps(document),), {}
            except RecursionError:  # parsed at the limit, one level more to write
                raise BadInput(f"the query arguments are {TOO_DEEP}") from None
        return (), self.schema.arguments(document)

    # -- the call -----------------------------------------------------------------------
    def score(self, arguments: Arguments) -> tuple[bytes, float]:
        """The response body and the seconds run() took. Raises ScoringError."""
        result, seconds = self.call(arguments)
        return self.encode(encode_output, result), seconds

    def call(self, arguments: Arguments) -> tuple[Any, float]:
        """run()'s value and the seconds it took, within admission and the timeout.
        Raises ScoringError."""
        try:
            waited = self.admission.acquire()
        except Overloaded as exc:
            self.metrics.rejected(exc.reason)
            raise
        if self.limited:
            self.metrics.queue_waited(waited)
        args, kwargs = arguments
        run = cast(Callable[..., Any], self.run)  # loaded before the first request is admitted
        started = time.perf_counter()
        if self.timeout_s is None:
            try:
                result = run(*args, **kwargs)
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - run() is the tenant's: every failure is answered
                self._driver_failed(exc)
            finally:
                self.admission.release()
        else:
            result = self._call_with_timeout(run, self.timeout_s, args, kwargs)
        return result, time.perf_counter() - started

    def encode(self, encoder: Callable[[Any], Encoded], result: Any) -> Encoded:
        """``encoder(result)``; a BadOutput it raises is counted and logged."""
        try:
            return encoder(result)
        except BadOutput as exc:
            self.metrics.driver_error("bad_output")
            log.error("%s", exc.message, exc_info=exc.__cause__)
            raise

    def _call_with_timeout(self, run: Callable[..., Any], timeout_s: float, args: tuple[Any, ...],
                           kwargs: dict[str, Any]) -> Any:
        pool = self._pool
        if pool is None:
            pool = self._pool = ThreadPoolExecutor(self.pool_size, thread_name_prefix="moma-run")
        try:
            future = pool.submit(run, *args, **kwargs)
        except BaseException:
            self.admission.release()
            raise
        future.add_done_callback(self._release)
        try:
            return future.result(timeout_s)
        except FutureTimeout:
            future.cancel()  # still queued (pool busy): never start it; releases its slot
            self.metrics.driver_error("timeout")
            log.warning("run() passed the scoring timeout of %.0f ms; its admission slot "
                        "stays held until it returns", timeout_s * 1000)
            raise ScoringTimeout(f"run() did not finish within "
                                 f"{timeout_s * 1000:.0f} ms") from None
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - as above, on the pool's thread
            self._driver_failed(exc)

    def _release(self, _future: Future) -> None:
        self.admission.release()

    def _driver_failed(self, exc: BaseException) -> None:
        self.metrics.driver_error("exception")
        message = _driver_message(exc)
        log.error("run() raised %s", message, exc_info=exc)
        raise DriverError(message) from exc
