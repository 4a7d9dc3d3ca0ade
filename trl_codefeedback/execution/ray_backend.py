"""Ray backend: the same sandboxed workers, as Ray actors on a cluster's CPU nodes.

For when one node's CPUs are not enough (APPS / Codeforces-scale tests, many GPUs per CPU):
``RayExecutor`` (or ``Executor(backend="ray")``) has the interface of :class:`Executor`, but its
programs run on Ray actors placed by Ray on the cluster's nodes. Each actor holds an ordinary
local :class:`Executor` (``cache_size=0``), so every node runs the very same sandbox, oracle and
fail-closed isolation policy as a single machine does; only the dispatch is Ray's.

Example (needs ``pip install '.[ray]' from a checkout (no PyPI release yet)``)::

    import ray
    ray.init(address="auto")  # or nothing: RayExecutor joins RAY_ADDRESS or starts a local Ray itself
    from trl_codefeedback.execution import Executor, Program
    with Executor(backend="ray") as ex:  # RayExecutor(...) for the Ray-specific options
        [fb] = ex.run([Program("def f(x):\\n    return x + 1\\n",
                               {"kind": "asserts", "asserts": ["assert f(1) == 2"]})])

What stays on the driver (the trainer's process): validation of the batch (malformed specs
raise before anything runs), the result cache and de-duplication, the progress bar, stats.
What goes to the actors: chunks of de-duplicated programs, as plain :class:`Program` objects;
results come back as plain Feedback dicts, in order.

Failures: an actor that dies (node lost, process killed, out of memory) turns the programs it
held -- and only those -- into ``harness_error`` records (never scored as the model's); the
batch's other chunks go on on the live actors, and a replacement actor is started at once,
joining the pool when it is ready (a replacement that cannot be placed never blocks a batch).
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import math
import os
import socket
import threading
import time
from typing import Any

from trl_codefeedback.execution.executor import Executor
from trl_codefeedback.execution.feedback import Feedback
from trl_codefeedback.execution.program import Limits
from trl_codefeedback.execution.sandbox import policy

logger = logging.getLogger(__name__)

INSTALL_HINT = "the Ray backend needs Ray: pip install '.[ray]' from a checkout (no PyPI release yet)"
START_TIMEOUT_S = 180.0


def import_ray():
    """``ray``, or an ImportError that says how to install it (Ray is an optional dependency)."""
    try:
        import ray  # noqa: PLC0415 - optional dependency
    except ImportError as e:
        raise ImportError(f"{INSTALL_HINT} ({e})") from e
    return ray


def default_actor_count(ray, workers_per_actor: int = 1) -> int:
    """Actors a new pool asks for: the cluster's free CPUs, and in a job of ``WORLD_SIZE`` ranks
    (torchrun / accelerate; every rank its own pool) no more than its share of all the CPUs, so
    ranks that start together split the cluster instead of the first one taking it all."""
    free = ray.available_resources().get("CPU", 0.0)
    total = ray.cluster_resources().get("CPU", 1.0)
    try:
        ranks = max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        ranks = 1
    return max(1, int(min(free, total / ranks) // workers_per_actor))


class ExecutorActor:
    """Runs in a Ray actor: a local sandboxed :class:`Executor` on the node Ray placed it on.

    Wrapped with ``ray.remote`` by :class:`RayExecutor` (kept a plain class so that importing this
    module never needs Ray).
    """

    def __init__(self, workers: int, isolate: bool | str):
        # pin_workers=False: Ray gives an actor CPUs to use, not particular cores; pinning every
        # actor's worker 0 to the node's first core would stack them all on one core.
        self.executor = Executor(workers=workers, cache_size=0, isolate=isolate, pin_workers=False)

    def ready(self) -> dict[str, Any]:
        """Start the sandboxed workers (fails closed exactly as locally) and say where they run."""
        import ray  # noqa: PLC0415

        isolation = self.executor.isolation  # starts the pool; SandboxUnavailableError propagates
        return {
            "node_id": ray.get_runtime_context().get_node_id(),
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "worker_pids": [w.proc.pid for w in self.executor._workers if w.proc is not None],
            "isolation": isolation,
        }

    def run(self, programs: list, limits: dict) -> list[dict]:
        return [fb.to_dict() for fb in self.executor.run(programs, limits=Limits(**limits))]

    def close(self) -> None:
        self.executor.close()


@dataclasses.dataclass
class _Actor:
    """One actor of the pool, as the driver sees it."""

    handle: Any
    ready_ref: Any  # ObjectRef of handle.ready(); None once resolved
    index: int
    info: dict = dataclasses.field(default_factory=dict)
    state: str = "starting"  # starting -> ready -> dead
    held: dict = dataclasses.field(default_factory=dict)  # in-flight ObjectRef -> chunk (list of item positions)


class RayExecutor(Executor):
    """An :class:`Executor` whose workers are Ray actors placed by Ray on the cluster's nodes.

    Args:
        workers: number of actors (default: the cluster's free CPUs divided by ``workers_per_actor``,
            read when the pool starts; in a multi-rank job at most this rank's share of the cluster,
            see :func:`default_actor_count`).
        limits, cache_size, isolate: as for :class:`Executor` (the cache lives on the driver;
            ``isolate`` is applied by every actor's own sandbox, on its node).
        pin_workers: accepted for interface compatibility; actors never pin (Ray assigns CPUs, not cores).
        workers_per_actor: sandboxed worker processes per actor (the actor asks Ray for as many CPUs).
            1 (default) lets Ray place every CPU's worker; more means fewer Ray processes per node
            (each costs ~100 MB of memory).
        chunk_size: programs per request to an actor (default: automatic, small enough to balance
            the load over the actors, at most 32).
        chunks_per_actor: requests queued on an actor at a time (2: the next chunk is already there
            when one finishes).
        actor_options: extra ``.options()`` for the actors, e.g. ``{"resources": {"sandbox": 1}}``
            to keep them on CPU nodes, or ``{"runtime_env": ...}``. Default scheduling: ``"SPREAD"``.
        address: Ray address to join when Ray is not initialised yet (``None``: ``ray.init()``'s own
            default, i.e. ``RAY_ADDRESS`` or a new local cluster). Ray started here is shut down by
            :meth:`close`; a Ray the caller started is left running.
        ray_init_kwargs: extra arguments for that ``ray.init``.
        start_timeout_s: how long the first start may wait for Ray to place and start all actors.

    The pool starts lazily on the first :meth:`run` and is shut down by :meth:`close`.
    """

    def __init__(
        self,
        workers: int | None = None,
        limits: Limits | None = None,
        cache_size: int = 100_000,
        isolate: bool | str = True,
        pin_workers: bool = True,
        *,
        workers_per_actor: int = 1,
        chunk_size: int | None = None,
        chunks_per_actor: int = 2,
        actor_options: dict | None = None,
        address: str | None = None,
        ray_init_kwargs: dict | None = None,
        start_timeout_s: float = START_TIMEOUT_S,
    ):
        self._ray = import_ray()  # fail at construction, with the install hint, not at the first batch
        super().__init__(workers=1, limits=limits, cache_size=cache_size, isolate=isolate, pin_workers=False)
        self.num_actors = workers  # None: decided from the cluster when the pool starts
        self.workers_per_actor = max(1, int(workers_per_actor))
        self.chunk_size = chunk_size
        self.chunks_per_actor = max(1, int(chunks_per_actor))
        self.actor_options = dict(actor_options or {})
        self.address = address
        self.ray_init_kwargs = dict(ray_init_kwargs or {})
        self.start_timeout_s = start_timeout_s
        self._actors: list[_Actor] = []
        self._actor_cls = None
        self._owns_ray = False
        self._run_lock = threading.Lock()  # one batch at a time on the pool
        self._next_index = 0
        self._current: tuple[list, dict] = ([], {})  # (items, todo) of the running dispatch

    # ------------------------------------------------------------------ pool lifecycle

    def _ensure_started(self) -> None:
        ray = self._ray
        with self._start_lock:
            if self._actors:
                return
            if self._closed:
                raise RuntimeError("Executor is closed")
            if not ray.is_initialized():
                ray.init(address=self.address, **self.ray_init_kwargs)
                self._owns_ray = True
            if self.num_actors is None:
                self.num_actors = default_actor_count(ray, self.workers_per_actor)
            self.num_workers = self.num_actors * self.workers_per_actor
            options = {"num_cpus": self.workers_per_actor, "scheduling_strategy": "SPREAD", "max_restarts": 0}
            options.update(self.actor_options)
            self._actor_cls = ray.remote(ExecutorActor).options(**options)
            actors = [self._spawn() for _ in range(self.num_actors)]
            try:
                self._await_ready(actors)
            except BaseException:
                for a in actors:
                    ray.kill(a.handle)
                raise
            self._actors = actors
            atexit.register(self.close)
            logger.info("ray executor: %d actors on %d node(s)", len(actors), len(self.nodes))

    def _spawn(self) -> _Actor:
        handle = self._actor_cls.remote(self.workers_per_actor, self.isolate)
        self._next_index += 1
        return _Actor(handle=handle, ready_ref=handle.ready.remote(), index=self._next_index - 1)

    def _await_ready(self, actors: list[_Actor]) -> None:
        """Wait until every actor has started its sandboxed workers; raise their failure as is."""
        ray = self._ray
        refs = [a.ready_ref for a in actors]
        _done, pending = ray.wait(refs, num_returns=len(refs), timeout=self.start_timeout_s)
        if pending:
            raise RuntimeError(
                f"Ray did not start {len(pending)} of {len(refs)} executor actors "
                f"(num_cpus={self.workers_per_actor} each) within {self.start_timeout_s:.0f} s; "
                f"cluster resources: {ray.cluster_resources()}, free: {ray.available_resources()}. "
                "Ask for fewer workers or add CPU nodes."
            )
        for a in actors:
            a.info = ray.get(a.ready_ref)  # SandboxUnavailableError etc. re-raised with their own type
            a.ready_ref, a.state = None, "ready"
            if self.isolate:
                # Weak: programs on this node may run as the driver's uid; make the driver non-dumpable
                # as a local executor makes its own process.
                policy.enforce(a.info["isolation"], self.isolate)

    @property
    def isolation(self) -> dict:
        """What the sandbox guarantees (as reported by the first actor's node)."""
        self._ensure_started()
        return dict(next(a.info for a in self._actors if a.info)["isolation"])

    @property
    def nodes(self) -> dict[str, int]:
        """Ray node id -> number of live actors on it."""
        out: dict[str, int] = {}
        for a in self._actors:
            if a.state == "ready":
                out[a.info["node_id"]] = out.get(a.info["node_id"], 0) + 1
        return out

    @property
    def actors(self) -> list:
        """Handles of the live actors."""
        return [a.handle for a in self._actors if a.state == "ready"]

    def in_flight(self) -> list[dict]:
        """Per live actor: its ``handle``, where it runs (``node_id``, ``hostname``, ``pid``, ``worker_pids``)
        and ``programs``: the positions, in the running batch, of the programs it holds now."""
        items, todo = self._current
        return [
            {**{k: v for k, v in a.info.items() if k != "isolation"}, "handle": a.handle,
             "programs": sorted(i for chunk in list(a.held.values()) for p in chunk for i in todo[items[p][0]])}
            for a in list(self._actors) if a.state == "ready"
        ]

    def close(self) -> None:
        """Stop all actors (and Ray, if this executor started it). Idempotent."""
        self._closed = True
        actors, self._actors = self._actors, []
        ray = self._ray
        if actors and ray.is_initialized():
            try:  # let each actor stop its workers, then make sure
                refs = [a.handle.close.remote() for a in actors if a.state == "ready"]
                if refs:
                    ray.wait(refs, num_returns=len(refs), timeout=10)
            except Exception as e:  # noqa: BLE001 - closing anyway
                logger.debug("ray executor: actors did not close cleanly: %s", e)
            for a in actors:
                try:
                    ray.kill(a.handle)
                except Exception as e:  # noqa: BLE001
                    logger.debug("ray executor: kill of actor %d: %s", a.index, e)
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()
            self._owns_ray = False

    # ------------------------------------------------------------------ running

    def _run_python(self, items, todo, out, bar) -> None:
        self._run_remote(items, todo, out, bar)

    def _run_java(self, items, todo, out, bar) -> None:
        self._run_remote(items, todo, out, bar)  # the actors' executors run Java on their own nodes

    def _run_remote(self, items, todo, out, bar) -> None:
        """Run the de-duplicated ``items`` (key, job, program) on the actors; fill ``out`` and the cache."""
        self._ensure_started()
        with self._run_lock:
            results = self._dispatch(items, bar, todo)
        for (key, _job, _program), result in zip(items, results):
            fb = Feedback.from_dict(result)
            self._cache_put(key, fb)
            for i in todo[key]:
                out[i] = fb

    def _dispatch(self, items, bar, todo) -> list[dict]:
        ray = self._ray
        results: list[dict | None] = [None] * len(items)
        starting = [a.ready_ref for a in self._actors if a.state == "starting"]
        if starting:  # replacements that started since the last batch join it from the start
            done, _ = ray.wait(starting, num_returns=len(starting), timeout=0)
            for a in [a for a in self._actors if a.ready_ref in done]:
                self._on_ready(a)
        size = self.chunk_size or max(1, min(32, math.ceil(len(items) / (4 * max(1, len(self.actors))))))
        queue = [list(range(s, min(s + size, len(items)))) for s in range(0, len(items), size)]
        queue.reverse()  # pop() from the end takes the first chunk first
        limits = items[0][1]["limits"]  # one run() call: one Limits for all
        self._current = (items, todo)
        # Plain Programs go to the actors: ``extra`` is the caller's (maybe large, maybe unpicklable).
        programs = [p if not p.extra else dataclasses.replace(p, extra={}) for _key, _job, p in items]

        def fail(chunk: list[int], message: str) -> None:
            for p in chunk:
                results[p] = Feedback.harness_error(message, tests_total=items[p][1]["num_tests"]).to_dict()
            if bar is not None:
                bar.update(sum(len(todo[items[p][0]]) for p in chunk))

        alone_since: float | None = None  # when the pool last had no ready actor while work remained
        while queue or any(a.held for a in self._actors):
            for a in self._actors:  # top up every ready actor
                while a.state == "ready" and queue and len(a.held) < self.chunks_per_actor:
                    chunk = queue.pop()
                    ref = a.handle.run.remote([programs[p] for p in chunk], limits)
                    a.held[ref] = chunk
            waiting = {ref: a for a in self._actors for ref in a.held}
            starting = {a.ready_ref: a for a in self._actors if a.state == "starting"}
            if not waiting:
                if not starting:
                    fail([p for chunk in queue for p in chunk], "no live Ray executor actor left")
                    queue.clear()
                    break
                alone_since = alone_since or time.monotonic()
                if time.monotonic() - alone_since > self.start_timeout_s:
                    fail([p for chunk in queue for p in chunk], "no Ray executor actor could be (re)started in time")
                    queue.clear()
                    break
            else:
                alone_since = None
            done, _ = ray.wait(list(waiting) + list(starting), num_returns=1, timeout=5.0)
            for ref in done:
                if ref in starting:
                    self._on_ready(starting[ref])
                    continue
                a = waiting[ref]
                chunk = a.held.pop(ref)
                try:
                    fbs = ray.get(ref)
                except ray.exceptions.RayActorError as e:  # the actor is gone: its programs only
                    fail(chunk, f"ray executor actor died: {type(e).__name__}: {e}")
                    self._on_death(a)
                    continue
                except Exception as e:  # noqa: BLE001 - e.g. the actor's method raised: ours, not the model's
                    fail(chunk, f"ray executor actor failed: {type(e).__name__}: {e}")
                    continue
                for p, d in zip(chunk, fbs):
                    results[p] = d
                if bar is not None:
                    bar.update(sum(len(todo[items[p][0]]) for p in chunk))
        self._actors = [a for a in self._actors if a.state != "dead"]
        return results  # type: ignore[return-value]

    def _on_ready(self, a: _Actor) -> None:
        """A replacement actor answered its start: join the pool, or drop it (never retried)."""
        try:
            a.info = self._ray.get(a.ready_ref)
            a.state = "ready"
        except Exception as e:  # noqa: BLE001
            logger.error("replacement ray executor actor failed to start: %s", e)
            a.state = "dead"
        a.ready_ref = None

    def _on_death(self, a: _Actor) -> None:
        """Mark ``a`` dead; its other in-flight chunks fail as their refs resolve. Start a replacement
        (only for an actor that had started: one that never did is not retried forever)."""
        if a.state == "dead":
            return
        was_ready = a.state == "ready"
        a.state = "dead"
        try:  # "unavailable" may be a partition, not a death: make sure it stops holding a CPU
            self._ray.kill(a.handle)
        except Exception as e:  # noqa: BLE001
            logger.debug("ray executor: kill of actor %d: %s", a.index, e)
        self.stats["worker_restarts"] += 1
        logger.warning("ray executor actor %d died (node %s); %s", a.index, a.info.get("node_id"),
                       "starting a replacement" if was_ready and not self._closed else "not replaced")
        if was_ready and not self._closed:
            self._actors.append(self._spawn())
