"""Counts of the faults the tests injected, printed at the end of the run (pytest's terminal
summary, see conftest.py): what the suite did, for the record."""

from __future__ import annotations

from collections import Counter

FAULTS: Counter[str] = Counter()  # kind of fault -> times injected
UNANSWERED: Counter[str] = Counter()  # kind of fault -> requests/CALLs left without an answer


def injected(kind: str, times: int = 1) -> None:
    FAULTS[kind] += times


def unanswered(kind: str, requests: int) -> None:
    UNANSWERED[kind] += requests


def summary() -> list[str]:
    lines = [f"{kind}: {n} injected" for kind, n in sorted(FAULTS.items())]
    lines += [
        f"{kind}: {n} requests/CALLs got no answer (or a CALLERROR) and were sent again"
        for kind, n in sorted(UNANSWERED.items())
    ]
    return lines
