"""csms.heap: the malloc arena limit a CSMS process sets before its threads start.

Each case runs in a fresh interpreter (an arena, once made, stays for the process's life):
eight threads allocate at the same time, then glibc's ``malloc_info`` counts the arenas."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from csms import cli as csms_cli
from csms import heap
from qrcharge_cli import build_parser

ROOT = Path(__file__).resolve().parents[2]

# Threads wait at a barrier holding their blocks, so each one has allocated (and been given an
# arena) before any frees; malloc_info's XML has one <heap nr="..."> per arena.
SCRIPT = """
import ctypes, ctypes.util, sys, tempfile, threading
from csms import heap

limited = heap.limit_arenas(int(sys.argv[1]))
barrier = threading.Barrier(8)

def allocate():
    blocks = [bytearray(64 * 1024) for _ in range(8)]
    barrier.wait()
    del blocks

threads = [threading.Thread(target=allocate) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
with tempfile.NamedTemporaryFile(suffix=".xml") as out:
    stream = libc.fopen(out.name.encode(), b"w")
    libc.malloc_info(0, stream)
    libc.fclose(stream)
    arenas = open(out.name).read().count("<heap nr=")
print(limited, arenas)
"""


def _arenas(limit: int, **env: str) -> tuple[str, int]:
    environ = {
        k: v for k, v in os.environ.items() if k not in ("MALLOC_ARENA_MAX", "GLIBC_TUNABLES")
    }
    environ.update(env, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(limit)],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
        check=True,
    )
    limited, arenas = done.stdout.split()
    return limited, int(arenas)


def test_threads_share_the_limited_arenas() -> None:
    assert _arenas(2) == ("True", 2)


def test_without_a_limit_each_thread_gets_an_arena() -> None:
    limited, arenas = _arenas(0)
    assert limited == "False"
    assert arenas > 2  # what the limit prevents (8 threads: glibc gives each one its own)


def test_the_environment_variable_stands() -> None:
    """glibc read MALLOC_ARENA_MAX at start: the setting does not override the operator's."""
    assert _arenas(2, MALLOC_ARENA_MAX="3") == ("False", 3)


def test_the_glibc_tunable_stands() -> None:
    """The same limit set as a glibc tunable, among others: the setting leaves it too."""
    tunables = "glibc.malloc.trim_threshold=131072:glibc.malloc.arena_max=3"
    assert _arenas(2, GLIBC_TUNABLES=tunables) == ("False", 3)


def test_a_limit_glibc_ignores_is_no_choice() -> None:
    """glibc takes no arena limit of 0 or of a word: the setting's limit applies."""
    assert _arenas(2, GLIBC_TUNABLES="glibc.malloc.arena_max=0") == ("True", 2)
    assert _arenas(2, MALLOC_ARENA_MAX="many") == ("True", 2)


def test_the_trim_runs_where_glibc_is_not_assumed() -> None:
    heap.trim()  # malloc_trim, or nothing: never raises


def test_qrcharge_csms_sets_the_configured_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before anything else starts (here: before it refuses SQLite with --workers)."""
    asked: list[int] = []
    monkeypatch.setattr(heap, "limit_arenas", lambda count: asked.append(count) or True)
    monkeypatch.setenv("QRCHARGE_MALLOC_ARENA_MAX", "3")
    args = build_parser().parse_args(["csms", "--data-dir", str(tmp_path), "--workers", "2"])
    assert csms_cli.run(args) == 2
    assert "needs PostgreSQL" in capsys.readouterr().err
    assert asked == [3]


@pytest.mark.parametrize("value", ["0x3", "3k", "+3"])
def test_a_limit_glibc_takes_stands_as_glibc_reads_it(value: str) -> None:
    """glibc reads the number as strtoul does (a sign, 0x, digits up to the first other)."""
    assert _arenas(0, MALLOC_ARENA_MAX=value) == ("False", 3)  # glibc alone: 3 arenas
    assert _arenas(2, MALLOC_ARENA_MAX=value) == ("False", 3)  # the operator's choice stands


def test_digits_glibc_does_not_read_are_no_limit() -> None:
    """Only ASCII digits are a number to glibc."""
    assert _arenas(2, MALLOC_ARENA_MAX="\u0663") == ("True", 2)  # ARABIC-INDIC DIGIT THREE


def test_a_superscript_digit_does_not_crash_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "\u00b2")  # "²".isdigit() is True; int("²") raises
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    assert heap.limit_arenas(2) in (True, False)
