"""Our Redis clients against a real, private redis-server: blocking reads that outlast redis-py's
default 5 s socket timeout, and Redis restarted under a channel layer receive, a stream reader
and a publisher (issue 9, items 12 and 15). The same code paths run end to end in
test_live_streaming.py and the drills; these pin each client's behaviour in seconds."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from chatplatform.redis_clients import RedisChannelLayer, connection_kwargs
from chats.hub import RedisHub
from tests.live import RedisServer

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server installed")


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def layer_for(server: RedisServer) -> RedisChannelLayer:
    return RedisChannelLayer(hosts=[{"address": server.url, **connection_kwargs(
        connect_timeout=1, socket_timeout=5, blocking_seconds=RedisChannelLayer.brpop_timeout,
        asyncio_client=True)}])


async def read_all(hub: RedisHub, stream_id: str, into: list[dict]) -> None:
    async for event in hub.read(stream_id):
        into.append(event)


async def test_channel_layer_receive_idles_past_the_default_socket_timeout(redis_server):
    layer = layer_for(redis_server)
    channel = await layer.new_channel()
    receiving = asyncio.create_task(layer.receive(channel))
    await asyncio.sleep(7)  # several blocking BZPOPMINs of 5 s, nothing sent
    assert not receiving.done(), receiving
    await layer.send(channel, {"type": "late"})
    assert (await asyncio.wait_for(receiving, 10))["type"] == "late"


async def test_channel_layer_receive_waits_for_redis_to_come_back(redis_server):
    layer = layer_for(redis_server)
    channel = await layer.new_channel()
    redis_server.stop()
    receiving = asyncio.create_task(layer.receive(channel))
    await asyncio.sleep(1.5)
    assert not receiving.done(), receiving  # waiting, not failed (a consumer would have died)
    redis_server.start()
    await layer.send(channel, {"type": "after.restart"})
    assert (await asyncio.wait_for(receiving, 15))["type"] == "after.restart"


async def test_a_cancelled_channel_layer_receive_always_ends(redis_server):
    # Cancelled at every step of its start (connect, EVAL, BZPOPMIN): on Python 3.11 redis-py's
    # asyncio.wait_for dropped the cancellation at one of them and the receive polled forever
    # (18 of 120 such receives, before the fix), which hung a consumer that had been closed.
    layer = layer_for(redis_server)
    for steps in range(120):
        receiving = asyncio.create_task(layer.receive(await layer.new_channel()))
        for _ in range(steps % 60):
            await asyncio.sleep(0)
        receiving.cancel()
        done, _ = await asyncio.wait({receiving}, timeout=3)
        assert done, f"receive still running 3 s after it was cancelled ({steps} steps in)"
        assert receiving.cancelled()
    await layer.send(channel := await layer.new_channel(), {"type": "still.works"})
    assert (await asyncio.wait_for(layer.receive(channel), 5))["type"] == "still.works"


async def test_hub_reader_follows_a_stream_silent_for_longer_than_five_seconds(redis_server):
    hub, elsewhere = RedisHub(redis_server.url), RedisHub(redis_server.url)  # two workers
    await hub.publish("quiet", {"id": 1, "type": "start"})
    events: list[dict] = []
    reader = asyncio.create_task(read_all(elsewhere, "quiet", events))
    await asyncio.sleep(6.5)
    assert not reader.done(), reader
    await hub.publish("quiet", {"id": 2, "type": "done"})
    await asyncio.wait_for(reader, 10)
    assert [e["id"] for e in events] == [1, 2]


async def test_hub_stream_goes_on_across_a_redis_restart(redis_server):
    hub, elsewhere = RedisHub(redis_server.url), RedisHub(redis_server.url)  # two workers
    await hub.publish("restart", {"id": 1, "type": "start"})
    await hub.publish("restart", {"id": 2, "type": "delta", "text": "before"})
    here, there = [], []
    local = asyncio.create_task(read_all(hub, "restart", here))
    remote = asyncio.create_task(read_all(elsewhere, "restart", there))
    await asyncio.sleep(0.5)
    assert [e["id"] for e in here] == [e["id"] for e in there] == [1, 2]
    redis_server.stop()
    # Published while Redis is away: the generating worker's readers get it at once, the generation
    # is not held up, and Redis gets it when it is back.
    await asyncio.wait_for(hub.publish("restart", {"id": 3, "type": "delta", "text": "during"}), 1)
    await asyncio.sleep(1.5)
    assert [e["id"] for e in here] == [1, 2, 3] and [e["id"] for e in there] == [1, 2]
    assert not remote.done()
    # The terminal event waits for Redis: a finished generation is readable on every worker.
    finishing = asyncio.create_task(hub.publish("restart", {"id": 4, "type": "done"}))
    await asyncio.sleep(1)
    assert not finishing.done()
    redis_server.start()
    await asyncio.wait_for(finishing, 15)
    await asyncio.wait_for(asyncio.gather(local, remote), 15)
    assert [e["id"] for e in here] == [e["id"] for e in there] == [1, 2, 3, 4]
    assert [e["text"] for e in there if e["type"] == "delta"] == ["before", "during"]


async def test_hub_writes_behind_in_batches_and_in_order(redis_server):
    import redis.asyncio as redis

    hub = RedisHub(redis_server.url)
    await hub.publish("many", {"id": 1, "type": "start"})
    client = redis.Redis.from_url(redis_server.url)
    await client.config_resetstat()
    # 50 deltas published in one go (as a provider's burst of chunks): far fewer writes than events.
    for index in range(2, 52):
        await hub.publish("many", {"id": index, "type": "delta", "text": str(index)})
    await hub.publish("many", {"id": 52, "type": "done"})
    stats = await client.info("commandstats")
    # One entry per batch: a burst like this is written in a few commands, not one per event.
    assert stats["cmdstat_xadd"]["calls"] <= 3 and stats["cmdstat_expire"]["calls"] <= 3, stats
    events: list[dict] = []
    await read_all(RedisHub(redis_server.url), "many", events)  # another worker, from Redis
    assert [e["id"] for e in events] == list(range(1, 53))
    await client.aclose()


async def test_hub_first_command_after_a_redis_restart_succeeds(redis_server):
    hub = RedisHub(redis_server.url)
    await hub.publish("one", {"id": 1, "type": "start"})  # the pool now holds a connection
    redis_server.stop()
    redis_server.start()
    # A stream's first event is not waited for (its request answers 503 while Redis is down),
    # so this passes only if the broken pooled connection is replaced on the spot.
    await hub.publish("two", {"id": 1, "type": "start"})
    assert await hub.exists("two")


async def test_hub_first_event_fails_at_once_while_redis_is_down(redis_server):
    import time

    from redis.exceptions import ConnectionError

    hub = RedisHub(redis_server.url)
    redis_server.stop()
    started = time.monotonic()
    with pytest.raises(ConnectionError):
        await hub.publish("new", {"id": 1, "type": "start"})
    assert time.monotonic() - started < 3
