"""The supervisor of ``--workers``: a worker that dies is started again; one that cannot start
(dies right after each start, three times in a row) makes it give up with status 1."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from csms.workers import Supervisor


def test_a_worker_that_cannot_start_ends_the_service(tmp_path: Path) -> None:
    starts = tmp_path / "starts"

    def command(index: int) -> tuple[list[str], dict[str, str]]:
        script = f"open({str(starts)!r}, 'a').write('{index}\\n'); raise SystemExit(3)"
        return [sys.executable, "-c", script], dict(os.environ)

    assert Supervisor(1, command, grace_s=1).run() == 1
    assert starts.read_text().split() == ["1", "1", "1"]  # started, restarted twice, given up


def test_the_others_keep_running_while_one_is_restarted(tmp_path: Path) -> None:
    """Worker 2 crashes twice right after starting; worker 1 runs on. The service gives up
    only when worker 2 fails a third time, and then stops worker 1 (SIGTERM)."""
    starts = tmp_path / "starts"
    stopped = tmp_path / "stopped"

    def command(index: int) -> tuple[list[str], dict[str, str]]:
        if index == 1:
            script = (
                "import signal, time\n"
                f"def bye(*_): open({str(stopped)!r}, 'w').write('1'); raise SystemExit(0)\n"
                "signal.signal(signal.SIGTERM, bye)\n"
                "time.sleep(60)\n"
            )
        else:
            script = f"open({str(starts)!r}, 'a').write('2\\n'); raise SystemExit(1)"
        return [sys.executable, "-c", script], dict(os.environ)

    assert Supervisor(2, command, grace_s=5).run() == 1
    assert starts.read_text().split() == ["2", "2", "2"]
    assert stopped.read_text() == "1"  # worker 1 was stopped cleanly, once
