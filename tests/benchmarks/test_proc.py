"""benchmarks.proc: one process's CPU and stat fields from /proc, None once it is gone."""

from __future__ import annotations

import os
import subprocess
import sys

from benchmarks import proc

WORK = "import sys; sum(range(3 * 10**7)); print('done', flush=True); sys.stdin.read()"


def test_a_process_cpu_grows_with_its_work_and_is_none_once_gone() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", WORK], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdin is not None and child.stdout is not None
    assert child.stdout.readline() == "done\n"
    used = proc.cpu_s(child.pid)
    assert used is not None and used >= 0.1  # its sum, not only its start
    child.stdin.close()
    child.wait(timeout=60)  # reaped: gone
    assert proc.cpu_s(child.pid) is None
    assert proc.stat(child.pid) is None


def test_the_stat_of_this_process_names_it() -> None:
    found = proc.stat(os.getpid())
    assert found is not None
    name, fields = found
    assert name.startswith(("python", "pytest"))
    assert int(fields[1]) == os.getppid()  # the field after the state is the parent's pid
    used = proc.cpu_s(os.getpid())
    assert used is not None and used > 0
