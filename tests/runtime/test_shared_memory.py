"""Memory shared by a container's workers (runtime/shared_memory.py): the balance
view here; admission and metric cells in test_units.py."""

from __future__ import annotations

import os
import time

from runtime import shared_memory


def test_balance_tells_the_fewest_connections_of_the_other_workers(tmp_path):
    memory = shared_memory.SharedMemory(cells=1, state_dir=str(tmp_path))
    memory.balance.publish(3)
    assert memory.balance.fewest_elsewhere() is None
    children = []
    for count in (5, 2):
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # a worker: publish, then wait to be killed
            memory.balance.publish(count)
            os.write(ready_w, b"x")
            time.sleep(60)
            os._exit(0)
        os.read(ready_r, 1)
        children.append(pid)
    try:
        assert memory.balance.fewest_elsewhere() == 2
        memory.reclaim(children[1])  # the worker with 2 exited
        assert memory.balance.fewest_elsewhere() == 5
        assert memory.balance.fewest_elsewhere(since=1.0) is None  # said at 0: stale
    finally:
        for pid in children:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
    memory.reclaim(children[0])
    assert memory.balance.fewest_elsewhere() is None
    memory.close()
