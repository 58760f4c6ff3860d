"""The Redis cache backend (profiles_site.cache) that CACHE_URL selects, against a real Redis:
the Redis CI and this machine kind run (127.0.0.1:6379), database 14 of it."""

from __future__ import annotations

import socket

import pytest

from profiles.api.throttling import window_count
from profiles_site.cache import RedisCache

REDIS_URL = "redis://127.0.0.1:6379/14"


def _redis_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        return False
    return True


pytestmark = pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379")


@pytest.fixture
def redis_cache():
    cache = RedisCache(REDIS_URL, {"KEY_PREFIX": "cache-test"})
    cache.clear()
    yield cache
    cache.clear()


def test_one_client_serves_every_call_and_the_cache_works_through_it(redis_cache):
    first = redis_cache._cache.get_client("a", write=True)
    assert redis_cache._cache.get_client("b") is first
    redis_cache.set("token", {"datamart": 1}, 30)
    assert redis_cache.get_many(["token", "missing"]) == {"token": {"datamart": 1}}
    assert redis_cache.incr(redis_cache.add("n", 1) and "n") == 2
    redis_cache.delete_many(["token", "n"])
    assert redis_cache.get("token") is None and redis_cache.get("n") is None


def test_the_rate_limit_window_counts_in_one_redis_key(redis_cache, monkeypatch):
    import profiles.api.throttling as throttling

    monkeypatch.setattr(throttling, "caches", {"default": redis_cache})
    assert [window_count("w", period=5) for _ in range(3)] == [1, 2, 3]
    ttl = redis_cache._cache.get_client("w").ttl(redis_cache.make_and_validate_key("w"))
    assert 0 < ttl <= 5


def test_the_round_trip_survives_redis_closing_its_connection(redis_cache):
    """A Redis restart closes the kept connection: the next round trip opens another one."""
    import redis

    assert redis_cache.get_many_and_incr([], counter="n", timeout=30)[1] == 1
    kept = redis_cache._cache._kept.connection
    kept.send_command("CLIENT", "ID")
    other = redis.Redis.from_url(REDIS_URL)
    assert other.client_kill_filter(_id=kept.read_response()) == 1
    assert redis_cache.get_many_and_incr([], counter="n", timeout=30)[1] == 2
    assert redis_cache._cache._kept.connection is not kept


def test_a_failed_round_trip_leaves_no_reply_behind(redis_cache):
    """A command that fails (INCR of a text) drops the connection with its unread replies: the
    next round trip reads its own."""
    import redis

    redis_cache.set("token", {"datamart": 1}, 30)
    redis.Redis.from_url(REDIS_URL).set(redis_cache.make_and_validate_key("text"), "abc")
    with pytest.raises(redis.ResponseError):
        redis_cache.get_many_and_incr(["token"], counter="text", timeout=30)
    read, count = redis_cache.get_many_and_incr(["token"], counter="n", timeout=30)
    assert (read, count) == ({"token": {"datamart": 1}}, 1)


def test_a_reply_larger_than_one_read_is_read_whole(redis_cache):
    """The kept connection's replies arrive in several reads of the socket (64 KiB each)."""
    value = {"text": "x" * 300_000, "number": 7}
    redis_cache.set("large", value, 30)
    read, count = redis_cache.get_many_and_incr(["large", "missing"], counter="n", timeout=30)
    assert (read, count) == ({"large": value}, 1)
