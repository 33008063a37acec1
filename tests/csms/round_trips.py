"""Counting the round trips to a PostgreSQL server that psycopg makes (the database threads'
units): what the pipelined statements (``csms.store.fast``) save, asserted by budget tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest


@dataclass
class RoundTrips:
    """Each statement outside a pipeline, each pipeline, and a commit that still had to be
    sent (a COMMIT that went in a pipeline leaves the driver's own commit nothing to send)."""

    count: int = 0
    in_pipeline: bool = False

    def waited(self, connection: psycopg.Connection[Any], step: str) -> None:
        """psycopg waits for the server with ``step`` (the name of its generator)."""
        if step.endswith("_enter_gen"):
            self.in_pipeline = True
        elif step.endswith("_exit_gen"):
            self.in_pipeline = False
            self.count += 1
        elif step.endswith("_commit_gen"):
            idle = connection.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE
            self.count += not idle
        elif not self.in_pipeline:
            self.count += 1


@contextmanager
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[RoundTrips]:
    """Counts psycopg's round trips (every connection, every thread) while entered."""
    seen = RoundTrips()
    wait = psycopg.Connection.wait

    def waiting(connection: psycopg.Connection[Any], gen: Any, *args: Any, **kw: Any) -> Any:
        seen.waited(connection, getattr(gen, "__qualname__", ""))
        return wait(connection, gen, *args, **kw)

    with monkeypatch.context() as patched:
        patched.setattr(psycopg.Connection, "wait", waiting)
        yield seen
