"""The C heap of a long-running CSMS process (glibc's malloc; elsewhere these do nothing).

* :func:`limit_arenas`: glibc gives each thread that allocates its own malloc *arena*, up to
  eight per core, and an arena keeps what its thread freed for that thread's later use. A
  CSMS process has a dozen threads that allocate (the store writer's lanes, the payment
  side's database threads, the executor's), so under load the heap grows by arenas that sit
  mostly empty: with two processes at 5,000 chargers, two arenas each instead of glibc's
  default held the RSS per 1,000 chargers at about half (docs/benchmarks.md). The threads
  hold the GIL for nearly all of their allocations, so they seldom wait for a shared arena.
* :func:`trim`: hands the heap's free pages back to the system. An argon2 check allocates its
  19 MiB with malloc in the thread that runs it; once the first such block is freed glibc
  raises its mmap threshold above that size, so later blocks come from the thread's arena and
  stay in the process when freed; a photo decode's frames likewise.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import re
from typing import Any

LOG = logging.getLogger("csms.heap")
M_ARENA_MAX = -8  # mallopt's parameter number (glibc's malloc.h)


def _libc() -> Any:
    """The C library, or None where it cannot be found."""
    path = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(path) if path else None
    except OSError:
        return None


_LIBC = _libc()
_MALLOPT = getattr(_LIBC, "mallopt", None)  # glibc's; None elsewhere (musl, macOS)
_MALLOC_TRIM = getattr(_LIBC, "malloc_trim", None)
if _MALLOPT is not None:
    _MALLOPT.argtypes = [ctypes.c_int, ctypes.c_int]
    _MALLOPT.restype = ctypes.c_int
if _MALLOC_TRIM is not None:
    _MALLOC_TRIM.argtypes = [ctypes.c_size_t]
    _MALLOC_TRIM.restype = ctypes.c_int


def limit_arenas(count: int) -> bool:
    """At most ``count`` malloc arenas from now on (call it before the process starts its
    threads: a thread keeps the arena it was given). Nothing for ``count`` 0, where the C
    library has no ``mallopt``, or when the environment sets the arena limit
    (``MALLOC_ARENA_MAX``, or ``glibc.malloc.arena_max`` in ``GLIBC_TUNABLES``: glibc read it
    at start, and the operator's choice stands). True when the limit was set."""
    if count <= 0 or _MALLOPT is None or _limited_by_environment():
        return False
    if _MALLOPT(M_ARENA_MAX, count) != 1:
        LOG.warning("could not limit the malloc arenas to %d", count)
        return False
    return True


def _limited_by_environment() -> bool:
    """Whether the environment gave glibc an arena limit it takes (see :func:`_glibc_number`:
    0, or no number at all, is ignored by glibc, which then sets no limit)."""
    tunables = os.environ.get("GLIBC_TUNABLES", "")  # name=value pairs separated by colons
    values = [os.environ.get("MALLOC_ARENA_MAX", "")] + [
        pair.partition("=")[2]
        for pair in tunables.split(":")
        if pair.startswith("glibc.malloc.arena_max=")
    ]
    return any((_glibc_number(value) or 0) > 0 for value in values)


_GLIBC_NUMBER = re.compile(r"[ \t\n\v\f\r]*\+?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", re.ASCII)


def _glibc_number(value: str) -> int | None:
    """The number glibc reads from a tunable's text, as its ``strtoul`` with base 0 does:
    leading blanks, a plus sign, ``0x`` for hex and ``0`` for octal, up to the first character
    that is not a digit ("3k" is 3); None where no number starts."""
    found = _GLIBC_NUMBER.match(value)
    if found is None:
        return None
    digits = found.group(1)
    if digits[:2] in ("0x", "0X"):
        return int(digits[2:], 16)
    return int(digits, 8) if digits.startswith("0") else int(digits)


def trim() -> None:
    """glibc's ``malloc_trim(0)``: free heap pages back to the system; elsewhere nothing."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
