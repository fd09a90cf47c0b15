"""Driver of the engine tests' image: what it does is set by the service's environment,
so one image serves every case.

ENGINE_TEST_VERSION   echoed back by run(): tells generations apart
ENGINE_TEST_FAIL_INIT init() raises (a generation that never gets ready)
ENGINE_TEST_RUN_SECONDS  run() sleeps this long (load for the autoscaler)
ENGINE_TEST_SPAWN     run() starts up to this many threads at once and answers how many
                      it could (a fork bomb's first steps, against the pids limit)
"""

import os
import threading
import time


def init():
    if os.environ.get("ENGINE_TEST_FAIL_INIT"):
        raise RuntimeError("init() failed on purpose (ENGINE_TEST_FAIL_INIT)")


def run(raw_data):
    if os.environ.get("ENGINE_TEST_SPAWN"):
        return {"started": spawn(int(os.environ["ENGINE_TEST_SPAWN"]))}
    time.sleep(float(os.environ.get("ENGINE_TEST_RUN_SECONDS") or 0))
    return {"version": os.environ.get("ENGINE_TEST_VERSION", "")}


def spawn(wanted):
    release = threading.Event()
    threads = []
    try:
        for _ in range(wanted):
            thread = threading.Thread(target=release.wait, daemon=True)
            thread.start()
            threads.append(thread)
    except RuntimeError:  # "can't start new thread": the limit
        pass
    finally:
        release.set()
    for thread in threads:
        thread.join()
    return len(threads)
