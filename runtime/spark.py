"""The SparkPython runtime: one local-mode SparkSession per gunicorn worker process.

Imported only when ``MOMA_RUNTIME_TYPE=SparkPython``, so the Python runtime never
loads pyspark. gunicorn runs without ``preload_app``: the app, and with it this
session's JVM, is created in each worker after the fork (a JVM does not survive a
fork). The JVM exits with its worker (pyspark's gateway watches its stdin).

Per worker (``SparkRuntime.start``, before the driver is imported):
  1. a SparkSession ``local[N]`` with N and the driver heap from the container's CPU
     quota and memory limit (``spark_resources.py``), UI off, scratch space and
     warehouse under the temp dir (the root file system may be read-only), bound to
     127.0.0.1 (local mode needs no network), the codecs' native libraries from the
     image (``spark_natives.py``); fitted stages keep their parameters on the JVM
     between transforms (``spark_params.py``);
  2. the driver module gets the globals ``spark`` and ``sc`` before its first line runs;
  3. after ``init()`` and before readiness, a warm-up: a small Spark job, a DataFrame
     of each Spark input, and ``run()`` with the schema's example when there is one
     (repeated, within a few seconds; ``SPARK_WARMUP=basic`` skips these calls, ``off``
     the whole warm-up), so the first requests do not pay for class loading, code
     generation and the JIT. A driver that collects data sees the example rows too.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from typing import Any

from pyspark.sql import SparkSession

from . import encoding, spark_encoding, spark_natives, spark_params, spark_resources
from .datacollection import register_spark
from .driver import Driver
from .errors import ConfigError
from .schema import SPARK, InputSpec, ServiceSchema
from .spark_rows import SparkInput, struct_from_swagger

log = logging.getLogger("moma.runtime")

WARMUP_MODES = ("full", "basic", "off")
WARMUP_CALLS = 30
WARMUP_BUDGET_S = 5.0


class SparkRuntime:
    def __init__(self, session: SparkSession, warmup: str) -> None:
        self.session = session
        self.warmup = warmup

    @classmethod
    def start(cls, environ: dict[str, str] | None = None) -> "SparkRuntime":
        env = dict(os.environ if environ is None else environ)
        warmup = (env.get("SPARK_WARMUP") or "full").strip().lower()
        if warmup not in WARMUP_MODES:
            raise ConfigError(f"SPARK_WARMUP must be one of {', '.join(WARMUP_MODES)}, got {warmup!r}")
        started = time.perf_counter()
        plan = spark_resources.resources(env)
        session = build_session(plan)
        log.info("Spark %s session %s started in %.1f s (driver memory %s, pid %d)",
                 session.version, plan.master, time.perf_counter() - started,
                 plan.driver_memory or "default", os.getpid())
        spark_params.install()
        encoding.register_prepare(spark_encoding.to_plain)
        register_spark(spark_encoding.shape_rows)
        return cls(session, warmup)

    @property
    def namespace(self) -> dict[str, Any]:
        """The driver's globals, as the original runtime gave them."""
        return {"spark": self.session, "sc": self.session.sparkContext}

    def input_converter(self, spec: InputSpec) -> SparkInput:
        """Schema type 2: the input's JSON rows as a DataFrame of its StructType."""
        return SparkInput(spec.name, struct_from_swagger(spec.swagger, spec.name), self._session)

    def _session(self) -> SparkSession:
        return self.session

    def warm_up(self, schema: ServiceSchema | None, driver: Driver) -> None:
        """Run before readiness; a failing Spark job fails the worker, a failing run() does not."""
        if self.warmup == "off":
            return
        started = time.perf_counter()
        self.session.range(0, 1000, 1, 2).selectExpr("sum(id)", "count(*)").collect()
        if schema is not None:
            for spec in schema.inputs:
                if spec.kind == SPARK:
                    frame = self.input_converter(spec)([])
                    frame.collect()
        calls = 0
        if self.warmup == "full" and schema is not None and schema.example is not None \
                and driver.run is not None:
            # Repeated: the JVM compiles the hot paths after some calls (a cold call took
            # 3x a warm one); stop after WARMUP_CALLS or WARMUP_BUDGET_S, whichever first.
            deadline = time.perf_counter() + WARMUP_BUDGET_S
            try:
                while calls < WARMUP_CALLS and time.perf_counter() < deadline:
                    encoding.encode_output(driver.run(**schema.arguments(schema.example)))
                    calls += 1
            except Exception as exc:  # noqa: BLE001 - the example may be stale; serving goes on
                log.warning("Spark warm-up: run() with the schema's example failed: %s: %s",
                            type(exc).__name__, exc)
        log.info("Spark warm-up done in %.2f s (%d run() calls)", time.perf_counter() - started, calls)


def build_session(plan: spark_resources.SparkResources) -> SparkSession:
    scratch = os.path.join(tempfile.gettempdir(), f"moma-spark-{os.getpid()}")
    builder = (SparkSession.builder
               .master(plan.master)
               .appName(f"moma-runtime-{os.getpid()}")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.driver.host", "127.0.0.1")
               .config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.local.dir", scratch)
               .config("spark.sql.warehouse.dir", os.path.join(scratch, "warehouse"))
               # Scoring requests are small: 200 shuffle partitions would be 200 tasks each.
               .config("spark.sql.shuffle.partitions", str(_cores(plan.master))))
    if plan.driver_memory:
        builder = builder.config("spark.driver.memory", plan.driver_memory)
    for key, value in spark_natives.options(os.environ.get("MOMA_SPARK_NATIVE_DIR")).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel((os.environ.get("SPARK_LOG_LEVEL") or "WARN").upper())
    return session


def _cores(master: str) -> int:
    inside = master[master.find("[") + 1:master.find("]")] if "[" in master else ""
    return int(inside) if inside.isdigit() and int(inside) > 0 else os.cpu_count() or 1
