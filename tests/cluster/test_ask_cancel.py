"""A node asking another (``ClusterNode.ask``, over the real Redis) stops when its caller is
cancelled, also when the answer arrives in the same turn of the loop as the cancel: Python
3.11's ``asyncio.wait_for`` returned the answer then and dropped the cancel (a request whose
client left, or a node stopping, went on as if nothing had happened)."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from tests.cluster.test_redis_pool import _node


async def test_a_cancelled_ask_stops_even_when_its_answer_came_in_the_same_turn(
    prefix: str, redis: Redis
) -> None:
    node = _node(redis, prefix)
    other = redis.pubsub()
    await other.subscribe(node.channel_of("n2"))  # node n2 is listening
    try:
        asking = asyncio.create_task(node.ask("n2", {"op": "command", "charger": "CP1"}))
        message = None
        while message is None or message["type"] != "message":
            message = await other.get_message(timeout=5)
        await asyncio.sleep(0.1)  # the asking task now waits for its answer
        ((_, waiting),) = node._waiting.items()
        waiting.set_result({"result": {"status": "Accepted"}})  # the answer comes...
        asking.cancel()  # ...in the same turn as the cancel
        with pytest.raises(asyncio.CancelledError):
            await asking
        assert node._waiting == {}
    finally:
        await other.aclose()
