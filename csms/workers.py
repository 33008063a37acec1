"""``qrcharge csms --workers N``: N CSMS processes on one port, kept running by a supervisor.

Each worker is a whole ``qrcharge csms`` process that binds the port itself with
``SO_REUSEPORT``: the kernel spreads new connections over the workers' sockets by a hash of
the peer's address, so a reconnect storm is shared evenly, where one shared listening socket
lets whichever worker wakes first accept a burst. The supervisor (this module, in the process
the operator started) holds no socket and serves nothing: it starts the workers in sessions of
their own, restarts one that dies (after a pause that doubles, up to
:data:`MAX_RESTART_PAUSE_S`), and gives up, stopping the others and exiting 1, when a worker
dies :data:`QUICK_CRASHES` times in a row within :data:`QUICK_S` of its start (a setting or the
database is wrong: restarting will not help). SIGTERM or SIGINT stops every worker with
SIGTERM (each closes its connections and its lifespan, as a single process does), SIGKILL after
``grace_s``, and exits 0.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType

LOG = logging.getLogger("csms.workers")
QUICK_S = 10.0  # a worker that dies sooner than this after its start "failed to start"
QUICK_CRASHES = 3  # that many in a row: the supervisor gives up
MAX_RESTART_PAUSE_S = 30.0
POLL_S = 0.2

Command = Callable[[int], tuple[list[str], dict[str, str]]]  # worker index -> argv, environment


@dataclass
class _Worker:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    quick_crashes: int = 0
    restart_at: float | None = None
    pause_s: float = 1.0


@dataclass
class Supervisor:
    """Runs ``count`` workers, worker ``i`` (1-based) started as ``command(i)``."""

    count: int
    command: Command
    grace_s: float = 15.0
    monotonic: Callable[[], float] = time.monotonic
    _stop: str | None = field(default=None, init=False)

    def run(self) -> int:
        """Until a signal (0) or a worker that cannot start (1)."""
        signals = (signal.SIGTERM, signal.SIGINT)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in signals}
        workers = [_Worker(i) for i in range(1, self.count + 1)]
        try:
            for worker in workers:
                self._start(worker)
            code = self._watch(workers)
        finally:
            self._stop_all(workers)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return code

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._stop = signal.Signals(signum).name

    def _start(self, worker: _Worker) -> None:
        argv, env = self.command(worker.index)
        # a session of its own: a terminal's Ctrl-C reaches the supervisor only, which then
        # stops each worker once (a second signal would make uvicorn skip its graceful close)
        worker.proc = subprocess.Popen(argv, env=env, start_new_session=True)
        worker.started = self.monotonic()
        worker.restart_at = None
        LOG.info("worker %d started (pid %d)", worker.index, worker.proc.pid)

    def _watch(self, workers: Sequence[_Worker]) -> int:
        while self._stop is None:
            now = self.monotonic()
            for worker in workers:
                if worker.restart_at is not None:
                    if now >= worker.restart_at:
                        self._start(worker)
                    continue
                assert worker.proc is not None
                code = worker.proc.poll()
                if code is None:
                    if now - worker.started > QUICK_S:
                        worker.quick_crashes, worker.pause_s = 0, 1.0
                    continue
                if now - worker.started < QUICK_S:
                    worker.quick_crashes += 1
                if worker.quick_crashes >= QUICK_CRASHES:
                    LOG.error(
                        "worker %d exited %d, %d times in a row right after starting: giving up",
                        worker.index,
                        code,
                        worker.quick_crashes,
                    )
                    return 1
                LOG.error(
                    "worker %d (pid %d) exited %d: restarting it in %.0f s",
                    worker.index,
                    worker.proc.pid,
                    code,
                    worker.pause_s,
                )
                worker.restart_at = now + worker.pause_s
                worker.pause_s = min(worker.pause_s * 2, MAX_RESTART_PAUSE_S)
            time.sleep(POLL_S)
        LOG.info("%s: stopping %d workers", self._stop, len(workers))
        return 0

    def _stop_all(self, workers: Sequence[_Worker]) -> None:
        running = [w.proc for w in workers if w.proc is not None and w.proc.poll() is None]
        for proc in running:
            proc.send_signal(signal.SIGTERM)
        deadline = self.monotonic() + self.grace_s
        for proc in running:
            try:
                proc.wait(max(0.0, deadline - self.monotonic()))
            except subprocess.TimeoutExpired:
                LOG.warning("worker pid %d did not stop in %.0f s: killed", proc.pid, self.grace_s)
                proc.kill()
                proc.wait()
