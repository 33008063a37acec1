"""The supervisor of ``--workers``: a worker that dies is started again; one that cannot start
(dies right after each start, three times in a row) makes it give up with status 1."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from config.settings import load_settings
from csms.cli import worker_command
from csms.workers import Supervisor
from qrcharge_cli import build_parser


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


def test_each_worker_gets_its_node_id_and_metrics_port(tmp_path: Path) -> None:
    """What a worker is started with: the supervisor's options, ``-w<i>`` on a configured node
    id, a metrics listener of its own, and the database URL in its environment (not in
    ``ps``)."""
    url = "postgresql+asyncpg://qrcharge:secret@db.internal/qrcharge"
    argv = ["csms", "--workers", "3", "--node-id", "csms-a", "--port", "9999"]
    argv += ["--data-dir", str(tmp_path), "--database-url", url]
    args = build_parser().parse_args(argv)
    settings = load_settings(
        data_dir=tmp_path, database_url=url, node_id="csms-a", port=9999,
        metrics_bind="127.0.0.1:9100",
    )  # fmt: skip
    seen = []
    for index in (1, 3):
        command, env = worker_command(args, settings, index)
        assert command[:3] == [sys.executable, "-m", "qrcharge_cli"]
        assert url not in " ".join(command) and env["QRCHARGE_DATABASE_URL"] == url
        worker = build_parser().parse_args(command[3:])
        assert (worker.worker_index, worker.workers, worker.port) == (index, 1, 9999)
        seen.append((worker.node_id, env["QRCHARGE_METRICS_BIND"]))
    assert seen == [("csms-a-w1", "127.0.0.1:9100"), ("csms-a-w3", "127.0.0.1:9102")]

    plain = load_settings(data_dir=tmp_path, database_url=url)
    command, _env = worker_command(args, plain, 2)
    assert "--node-id" not in command  # each worker: its host name and process id
