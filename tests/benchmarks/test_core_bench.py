"""Smoke test of the core benchmark: it runs against the current core API and reports every
figure that docs/benchmarks.md records."""

from __future__ import annotations

import re

import pytest

from benchmarks import core_bench


def test_quick_run_reports_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    assert core_bench.main(["--quick"]) == 0
    out = capsys.readouterr().out
    labels = [
        "start token issue",
        "start token verify",
        "settlement verify",
        "QR render",
        "decode+verify per 1280x720",
        "frame without a code",
        "smallest code width",
    ]
    for label in labels:
        assert label in out, label
    assert "wrong/undecoded 0" in out
    versions = dict(re.findall(r"start, (.+?): \d+ chars, version (\d+)", out))
    assert len(versions) == len(core_bench.LAYOUTS)
    assert int(versions[core_bench.REALISTIC.name]) <= core_bench.TARGET_VERSION
