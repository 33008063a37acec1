"""Smoke test of benchmarks/payments_bench.py: it runs against the current API and reports
both figures (service level, through the HTTP app in-process, and to a CSMS process)."""

from __future__ import annotations

import pytest

from benchmarks import payments_bench


@pytest.mark.parametrize(
    ("mode", "cost"),
    [([], "per CPU-second"), (["--http"], "per CPU-second"), (["--http-server"], "ms/request")],
)
def test_tiny_run_reports_both_rates(
    mode: list[str], cost: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--count", "12", "--drivers", "3", "--concurrency", "4", *mode]
    assert payments_bench.main(argv) == 0
    out = capsys.readouterr().out
    assert "orders created" in out and "settlements verified + paid" in out
    assert cost in out
    assert "PostgreSQL transactions" not in out  # SQLite
