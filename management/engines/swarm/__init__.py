"""The ``swarm`` engine: a moma service is one Docker Swarm service.

Swarm runs the replicas, restarts failed tasks, spreads connections and rolls
updates; this adapter only translates a :class:`Workload` into a swarm service
definition (``definition.py``, a pure function) and waits for swarm to converge on it
(``engine.py``); ``models.py`` reads services and tasks by name, ``key_secrets.py``
keeps the keys, ``publishing.py`` chooses how and where the port is published.

- **Replicas and updates.** ``workload.replicas`` tasks; updates are rolling,
  ``start-first``, one task at a time, ``failure_action=rollback``: a new task must
  pass its health check (the runtime's ``/readyz``) before swarm stops an old one, so
  the service keeps answering through an update. Every update stamps the task
  template with a new *revision* label; ``deploy`` returns once every running task
  carries it, no task of an older revision runs any more, and ``/readyz`` answers
  200 through the published port. When the new revision fails (the driver's
  ``init()`` raised, the task crashes, or it is not ready in ``workload.ready_seconds``)
  the engine puts the previous definition back (the old tasks never stopped) and raises
  EngineError with the failing tasks' last log lines. A deploy whose definition did not
  change (same hash, same keys) updates nothing: the reconciler may repeat it.
  Neither replicas nor the generation are part of that hash: a new generation that
  only changes the replicas scales the service and relabels it, and its tasks keep
  running (``status().generation`` then comes from the service's label).
- **Publishing.** ``ingress``: the contract's port (5001) published in ingress mode on
  ``workload.port`` when given (else swarm picks one), on every node and every
  interface; swarm's routing mesh (IPVS) balances connections over the replicas.
  ``host``: for nodes whose kernel has no IPVS (the routing mesh needs it: without
  it a published port accepts nothing): the tasks use the node's network and
  every replica listens on the same port with SO_REUSEPORT (``REUSE_PORT=true``),
  so the kernel spreads connections, as the local engine does for its two
  generations; the port is bound to 127.0.0.1 when the scoring host is a loopback
  address. ``from_env(publish="auto")`` picks ``ingress`` unless the local kernel
  lacks IPVS. In ``host`` mode each task is named by ``MOMA_INSTANCE={{.Task.Name}}``
  (the host name is the node's) and told apart by the opaque
  ``MOMA_INSTANCE_ID={{.Task.ID}}`` that its ``/readyz`` shows; the health check
  (``python -m runtime.healthcheck``, the image's own) asks ``/readyz`` until its own
  instance answers, and prints the answer, which tells the engine when a starting task
  has failed.
- **Keys** travel in a Docker secret holding the key-hash file, named after the
  service id and a hash of its content, mounted at the contract's ``KEYS_FILE`` (mode
  0444, owned by the runtime's uid). New keys = a new secret and a rolling update to it
  (the unchanged key keeps working throughout); secrets no task uses any more are then
  removed. ``set_keys`` with the keys already mounted changes nothing.
- **Security.** The image's non-root user, read-only root file system, a tmpfs at
  /tmp, all capabilities dropped, CPU and memory reserved *and* limited; a pids limit,
  and the engine's default memory limit (not reserved) when the service sets none
  (:class:`Limits`; ``Limits.Pids`` needs API 1.41, Docker 20.10). Docker 20.10
  (API 1.41) applies ``CapabilityDrop`` to service tasks but ignores
  ``Privileges.NoNewPrivileges`` (newer engines apply it; it is always sent).
  Dropping every capability empties the bounding set, so a set-uid binary still
  gains no capability.
- **Images** are referenced by their registry digest when they have one, else (on a
  single-node swarm) by id, resolved from the service's reference at each deploy: swarm
  uses them as they are instead of pulling a tag, and a tag moved later changes nothing
  that runs (``moma.image`` keeps the reference).

Docker SDK errors leave every method through ``docker_errors`` as EngineError, the cause kept.
"""

from .engine import SwarmEngine

__all__ = ["SwarmEngine"]
