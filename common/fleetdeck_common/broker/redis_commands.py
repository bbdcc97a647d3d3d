"""The Redis commands each `RedisBroker` method sends: what a Redis ACL must allow for it.

Kept beside the broker (a test holds every public method of `RedisBroker` to an entry here); the
job rules' scripts say their own commands (`jobs.redis.SCRIPT_COMMANDS`).
"""

from __future__ import annotations

from collections.abc import Mapping

COMMANDS: Mapping[str, tuple[str, ...]] = {
    # Sent by every pooled connection by itself: the health check of an idle connection, and
    # SELECT when the URL names a database other than 0.
    "connection": ("ping", "select"),
    "ping": ("ping",),
    "publish": ("publish",),
    # The pub/sub connection also pings while subscribed (redis-py's health check).
    "subscribe": ("subscribe", "unsubscribe", "ping"),
    "push_capped": ("multi", "rpush", "ltrim", "exec"),
    # Any kind of batched write; a service is granted only the kinds its stores declare (`BATCHED`).
    "write_batch": ("rpush", "ltrim", "hset", "publish", "set", "pexpire", "setrange"),
    "read_ranges": ("getrange",),
    "read_list": ("lrange",),
    "hash_set": ("hset",),
    "hash_set_if_absent": ("hsetnx",),
    "hash_get_all": ("hgetall",),
    "hash_delete": ("hdel",),
    "set": ("set",),
    "get": ("get",),
    "delete": ("del",),
    "expire": ("pexpire",),
    "stream_add": ("xadd",),
    "stream_append": ("xadd",),
    "stream_before": ("xrevrange",),
    "stream_range": ("xrange",),
    "group_ensure": ("xgroup|create",),
    "group_read": ("xreadgroup", "xgroup|create"),  # recreates a group Redis lost
    "group_claim_stale": ("xautoclaim",),
    "group_touch": ("xclaim",),
    "group_ack": ("xack",),
}

# What each kind of batched write (`Write`, by class name) queues on the pipeline (`redis_writes`).
BATCHED: Mapping[str, tuple[str, ...]] = {
    "PushCapped": ("rpush", "ltrim"),
    "HashSet": ("hset",),
    "Publish": ("publish",),
    "Reserve": ("set", "pexpire"),
    "SetRange": ("setrange",),
}
