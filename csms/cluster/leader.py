"""The once-per-cluster jobs (the payments reaper) and the election of the node that runs them.

Every node runs :meth:`Leadership.run`. A follower asks for the leader lock every
``leader_retry_s``; the node that gets it starts the jobs and checks the lock every
``leader_heartbeat_s``. It steps down, cancelling the jobs, as soon as a check fails or none
succeeded for ``leader_lease_s`` (the server ends such a silent session by then, so another
node may already lead). A lock of its own per node (:class:`Lock`): a PostgreSQL advisory lock
(:mod:`csms.store.leader_lock`), or none at all on SQLite, where the one process always leads.

Leading is an optimisation, never a guarantee: two leaders for a moment (a hung leader waking
up after another took over) do no harm, because every money step the jobs take is a
conditional update that exactly one process wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol

from csms import metrics

LOG = logging.getLogger("csms.leader")

Job = tuple[str, Callable[[], Coroutine[Any, Any, None]]]  # a name (of its task) and its loop


class Lock(Protocol):
    """What the election needs of the database: a lock held by one node at a time."""

    async def try_acquire(self) -> bool: ...

    async def held(self) -> bool: ...

    async def close(self) -> None: ...


class Leadership:
    """Elects this node (``lock``; None: always the leader) and runs ``jobs`` while it leads."""

    def __init__(
        self,
        lock: Lock | None,
        *,
        node_id: str,
        jobs: Sequence[Job],
        heartbeat_s: float,
        lease_s: float,
        retry_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = lock
        self.node_id = node_id
        self._jobs = list(jobs)
        self._heartbeat_s = heartbeat_s
        self._lease_s = lease_s
        self._retry_s = retry_s
        self._monotonic = monotonic
        self.is_leader = False
        self.terms = 0  # how many times this node became the leader
        self._running: list[asyncio.Task[None]] = []

    async def run(self) -> None:
        """Forever (an owned task): follow, lead when elected, step down when the lock is lost.
        Cancelled, it stops the jobs and gives the lock back."""
        try:
            while True:
                if self._lock is None or await self._lock.try_acquire():
                    await self._lead()
                await asyncio.sleep(self._retry_s)
        finally:
            await self._step_down("stopping")
            if self._lock is not None:
                await self._lock.close()

    async def _lead(self) -> None:
        self.is_leader = True
        self.terms += 1
        metrics.set_leader(True)
        LOG.info("node %s leads the cluster: starting %s", self.node_id, self._names())
        self._running = [asyncio.create_task(job(), name=name) for name, job in self._jobs]
        lock = self._lock
        if lock is None:  # nobody to lose the lead to
            await asyncio.gather(*self._running)
            await asyncio.Event().wait()  # the jobs ended (none configured): still the leader
            return
        confirmed = self._monotonic()
        while True:
            await asyncio.sleep(self._heartbeat_s)
            # a loop that was blocked longer than the lease may have lost the lock already:
            # stop before asking the database, which is another wait
            if self._monotonic() - confirmed > self._lease_s:
                await self._step_down("the leader lock was not confirmed within the lease")
                return
            asked = self._monotonic()
            if not await lock.held():
                await self._step_down("the leader lock was lost")
                return
            confirmed = asked

    async def _step_down(self, why: str) -> None:
        running, self._running = self._running, []
        for task in running:
            task.cancel()
        for task in running:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.is_leader:
            level = logging.INFO if why == "stopping" else logging.WARNING
            LOG.log(level, "node %s steps down (%s): stopped %s", self.node_id, why, self._names())
        self.is_leader = False
        metrics.set_leader(False)

    def _names(self) -> str:
        return ", ".join(name for name, _ in self._jobs) or "no jobs"
