"""Context on log records, and the JSON line format."""

from __future__ import annotations

import asyncio
import json
import logging
import sys

from config.logs import ContextFilter, JsonFormatter, bind, bind_for_task, current


def _record(msg: str = "hello %s", args: tuple[object, ...] = ("world",)) -> logging.LogRecord:
    record = logging.LogRecord("csms.test", logging.WARNING, __file__, 1, msg, args, None)
    ContextFilter().filter(record)
    return record


def test_bound_fields_reach_the_json_line_and_unbind_after() -> None:
    with bind(charger_id="CP-1"), bind(order_id="ORDER1", txn="42"):
        line = json.loads(JsonFormatter().format(_record()))
    assert line["msg"] == "hello world" and line["level"] == "WARNING"
    assert (line["charger_id"], line["order_id"], line["txn"]) == ("CP-1", "ORDER1", "42")
    assert line["ts"].endswith("Z") and "request_id" not in line
    outside = json.loads(JsonFormatter().format(_record()))
    assert not {"charger_id", "order_id", "txn"} & set(outside)


def test_an_exception_is_one_line_with_its_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), None)

        record.exc_info = sys.exc_info()
    text = JsonFormatter().format(record)
    assert "\n" not in text and "ValueError: boom" in json.loads(text)["exc"]


async def test_a_task_binding_is_seen_by_the_tasks_it_starts_and_not_by_others() -> None:
    async def connection(charger_id: str) -> list[str | None]:
        bind_for_task(charger_id=charger_id)
        child = asyncio.create_task(asyncio.sleep(0, result=current("charger_id")))
        return [current("charger_id"), await child]

    first, second = await asyncio.gather(connection("A"), connection("B"))
    assert first == ["A", "A"] and second == ["B", "B"]
    assert current("charger_id") is None
