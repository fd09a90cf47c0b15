"""Driver of the engine tests' image: what it does is set by the service's environment,
so one image serves every case.

ENGINE_TEST_VERSION   echoed back by run(): tells generations apart
ENGINE_TEST_FAIL_INIT init() raises (a generation that never gets ready)
ENGINE_TEST_RUN_SECONDS  run() sleeps this long (load for the autoscaler)
"""

import os
import time


def init():
    if os.environ.get("ENGINE_TEST_FAIL_INIT"):
        raise RuntimeError("init() failed on purpose (ENGINE_TEST_FAIL_INIT)")


def run(raw_data):
    time.sleep(float(os.environ.get("ENGINE_TEST_RUN_SECONDS") or 0))
    return {"version": os.environ.get("ENGINE_TEST_VERSION", "")}
