"""The deadline of the CALL a connection is handling, on one timer that is moved along.

Every incoming CALL is answered within a deadline (:data:`csms.protocol.base.HANDLER_DEADLINE_S`).
``asyncio.timeout`` per CALL makes a timer per CALL and cancels it a few milliseconds later, a
noticeable share of the event loop's work at thousands of CALLs a second (figures in
docs/benchmarks.md). A connection handles its CALLs one after the other, so one timer per
connection serves them all: it is armed for the deadline of the CALL being handled when there
is none, and when it fires it either finds that CALL's deadline passed (the handling task is
cancelled, as ``asyncio.timeout`` does it) or re-arms itself for the deadline of the CALL
handled now, which is later. A timer fires at most once per deadline period per connection,
and never after the deadline of the CALL it guards.
"""

from __future__ import annotations

import asyncio


class CallDeadline:
    """One connection's deadline for handling its current CALL (see the module's docstring).

    Use: :meth:`start` (False when a CALL of this connection is being handled already: the
    caller then uses ``asyncio.timeout``), the handling, :meth:`passed` when it raised
    CancelledError, and :meth:`stop` in any case."""

    __slots__ = ("_at", "_cancelling", "_expired", "_seconds", "_task", "_timer")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._task: asyncio.Task[object] | None = None  # handling a CALL now
        self._at = 0.0  # when its deadline passes, on the loop's clock
        self._timer: asyncio.TimerHandle | None = None
        self._expired = False  # this deadline cancelled the task, not withdrawn yet
        self._cancelling = 0  # the task's cancel requests when the CALL began

    def start(self) -> bool:
        """The current task starts handling a CALL; its deadline runs from now."""
        if self._task is not None:
            return False
        task = asyncio.current_task()
        if task is None:
            return False
        loop = task.get_loop()
        self._task, self._at, self._expired = task, loop.time() + self._seconds, False
        self._cancelling = task.cancelling()
        if self._timer is None:
            self._timer = loop.call_at(self._at, self._check)
        return True

    def stop(self) -> None:
        """The CALL is handled (or failed); the timer stays for the next CALL. A cancel of
        this deadline that did not come out of the handler as a CancelledError (turned into
        another error, or lost to a result that arrived in the same turn of the loop) is
        withdrawn here, as ``asyncio.timeout`` does on exit: left counted on the task, it
        would make the connection's next timeout look like someone else's cancel."""
        if self._expired and self._task is not None:
            self._task.uncancel()
        self._task, self._expired = None, False

    def passed(self) -> bool:
        """Called with a CancelledError from the handling: whether it is this deadline's
        (then the task's cancellation is withdrawn and the caller answers the timeout),
        not someone else's (the connection closing), which must go on."""
        if not self._expired or self._task is None:
            return False
        self._expired = False
        return self._task.uncancel() <= self._cancelling

    def cancel(self) -> None:
        """The connection is gone: no timer left behind."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._task = None

    def _check(self) -> None:
        self._timer = None
        task = self._task
        if task is None:
            return  # nothing being handled: the next CALL arms a timer
        loop = task.get_loop()
        if loop.time() < self._at:  # a later CALL's deadline
            self._timer = loop.call_at(self._at, self._check)
            return
        self._expired = True
        task.cancel()
