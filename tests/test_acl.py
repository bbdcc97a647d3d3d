"""The Redis ACL, pure: generated from the stores' declarations, nothing forbidden, every key owned."""

from __future__ import annotations

import inspect
from fnmatch import fnmatchcase
from typing import get_args

import pytest
import redis.asyncio

from fleetdeck.redis_acl import (
    CHANNEL_GRANTS,
    COMMANDS_OF,
    KEY_GRANTS,
    REPLICA_USER,
    SENTINEL_USER,
    ReplicationPasswords,
    acl_file,
)
from fleetdeck_common import auditstore, chatstore, filestore, hoststore, topics
from fleetdeck_common.acl import (
    FORBIDDEN,
    SERVICE_CALLS,
    SERVICES,
    Service,
    channel,
    commands_for,
    grant,
    key_rules,
    password_hash,
    user_rule,
)
from fleetdeck_common.broker import HashSet, Publish, PushCapped, Reserve, SetRange, Write
from fleetdeck_common.broker.redis import RedisBroker
from fleetdeck_common.broker.redis_commands import BATCHED
from fleetdeck_common.broker.redis_writes import queue_write
from fleetdeck_common.history import Tier
from fleetdeck_common.history import store as history_store
from fleetdeck_common.jobs import keys as job_keys
from fleetdeck_common.jobs.redis import SCRIPT_COMMANDS, RedisRules
from fleetdeck_common.terms import store as term_store
from fleetdeck_gateway.alerts import outbox as alert_outbox
from fleetdeck_gateway.alerts import store as alert_store
from fleetdeck_gateway.auth import sessions

PASSWORDS: dict[Service, str] = {"gateway": "g-secret", "worker": "w-secret", "agent": "a-secret"}
REPLICATION = ReplicationPasswords(replica="r-secret", sentinel_user="s-secret", sentinel="own-secret")
# The only administrative command any user holds: Sentinel's, to make a failover survive a restart.
SENTINELS_OWN = {"config"}


def _rules(replication: ReplicationPasswords | None = None) -> dict[str, list[str]]:
    lines = acl_file(PASSWORDS, replication).splitlines()
    return {line.split()[1]: line.split() for line in lines}


def owned(key: str) -> bool:
    return any(fnmatchcase(key, declared.pattern) for declared in KEY_GRANTS)


def test_default_is_off_and_each_service_has_one_user_with_a_hashed_password() -> None:
    rules = _rules()
    assert list(rules) == ["default", "fleetdeck-gateway", "fleetdeck-worker", "fleetdeck-agent"]
    assert rules["default"][2] == "off" and "-@all" in rules["default"] and "on" not in rules["default"]
    text = acl_file(PASSWORDS)
    for service, password in PASSWORDS.items():
        assert password not in text
        assert f"#{password_hash(password)}" in rules[f"fleetdeck-{service}"]


def test_no_user_gets_an_administrative_command() -> None:
    for name, words in _rules(REPLICATION).items():
        assert words.index("-@all") > words.index("resetchannels") > words.index("resetkeys"), name
        granted = {w[1:].split("|")[0] for w in words if w.startswith("+")}
        assert granted & FORBIDDEN == (SENTINELS_OWN if name == SENTINEL_USER else set()), name
        assert not any(w.startswith("+@") or w in ("allkeys", "allchannels", "~*", "&*") for w in words)
    # ...and of CONFIG, only REWRITE: not GET (the servers' settings) or SET (e.g. a new `dir`).
    assert [w for w in _rules(REPLICATION)[SENTINEL_USER] if w.startswith("+config")] == ["+config|rewrite"]


def test_behind_sentinel_the_replicas_and_sentinels_get_users_with_no_keys() -> None:
    rules = _rules(REPLICATION)
    assert list(rules) == [
        "default",
        "fleetdeck-gateway",
        "fleetdeck-worker",
        "fleetdeck-agent",
        REPLICA_USER,
        SENTINEL_USER,
    ]
    without = _rules()  # the same lines for default and the services, with or without Sentinel
    assert {name: rules[name] for name in without} == without
    replica, sentinel = rules[REPLICA_USER], rules[SENTINEL_USER]
    assert replica == [
        "user",
        REPLICA_USER,
        "on",
        f"#{password_hash('r-secret')}",
        "resetkeys",
        "resetchannels",
        "-@all",
        "+ping",
        "+psync",
        "+replconf",
    ]
    assert sentinel[:6] == [
        "user",
        SENTINEL_USER,
        "on",
        f"#{password_hash('s-secret')}",
        "resetkeys",
        "resetchannels",
    ]
    assert [w for w in sentinel if "~" in w] == []
    assert [w for w in sentinel if w.startswith("&")] == ["&__sentinel__:hello"]
    assert {w for w in sentinel if w.startswith("+")} == {
        "+client|kill",
        "+client|setname",
        "+config|rewrite",
        "+exec",
        "+info",
        "+multi",
        "+ping",
        "+publish",
        "+role",
        "+script|kill",
        "+slaveof",
        "+subscribe",
    }
    # Sentinel's own password is not a server user: it is in no line.
    text = acl_file(PASSWORDS, REPLICATION)
    assert "own-secret" not in text and password_hash("own-secret") not in text


def test_the_agent_writes_its_samples_and_presence_and_nothing_else() -> None:
    agent = _rules()["fleetdeck-agent"]
    assert [w for w in agent if "~" in w] == [
        "%W~fleetdeck:hosts",
        "~fleetdeck:history:*",  # its tiers: written, and read back after a restart
    ]
    assert [w for w in agent if w.startswith("&")] == ["&fleetdeck:cpu", "&fleetdeck:summary"]
    # Exactly what its batches send (heartbeat HSET, live PUBLISH, history tiers SET/PEXPIRE and
    # SETRANGE), what it reads back (GETRANGE), and the connection's own: no list commands.
    assert [w for w in agent if w.startswith("+")] == [
        "+getrange",
        "+hset",
        "+pexpire",
        "+ping",
        "+publish",
        "+select",
        "+set",
        "+setrange",
    ]
    declared = {kind for g in KEY_GRANTS for kind in g.batched_by("agent")}
    assert declared == {"HashSet", "Publish", "Reserve", "SetRange"}


def test_rules_are_made_from_the_declarations() -> None:
    keys = [
        grant("a:*", read=["gateway"]),
        grant("b", read=["gateway"], write=["gateway", "agent"], batches={"agent": ["PushCapped"]}),
    ]
    channels = [channel("c", publish=["agent"], subscribe=["gateway"]), channel("d", subscribe=["worker"])]
    commands = {"connection": ("ping",), "read_ranges": (), "batch:PushCapped": ("rpush", "ltrim")}
    rule = user_rule("agent", "pw", keys, channels, {**COMMANDS_OF, **commands})
    assert rule == (
        f"user fleetdeck-agent on #{password_hash('pw')} resetkeys %W~b resetchannels &c -@all "
        "+ltrim +ping +rpush"
    )
    # A batch declared for another service gives the agent nothing.
    keys[1] = grant("b", write=["gateway", "agent"], batches={"gateway": ["PushCapped"]})
    assert user_rule("agent", "pw", keys, channels, {**COMMANDS_OF, **commands}).endswith("-@all +ping")
    gateway = user_rule("gateway", "pw", keys, channels, COMMANDS_OF)
    assert "%R~a:* %W~b resetchannels &c -@all" in gateway and "+ltrim" in gateway


def test_a_batch_may_be_declared_only_for_a_service_that_writes_the_keys() -> None:
    with pytest.raises(ValueError, match=r"b: \['agent'\] batch writes to keys they may not write"):
        grant("b", read=["agent"], write=["gateway"], batches={"agent": ["HashSet"]})


def test_each_kind_of_batched_write_says_what_it_sends() -> None:
    """BATCHED (what the ACL grants per kind) is what `queue_write` queues for it, for every kind."""
    assert set(BATCHED) == {kind.__name__ for kind in get_args(Write)}
    samples: list[Write] = [
        PushCapped("k", "v", 3),
        HashSet("k", "f", "v"),
        Publish("c", "v"),
        Reserve("k", 8, 1.0),
        SetRange("k", 0, b"x"),
    ]
    client = redis.asyncio.Redis()  # never connects: the pipeline only queues
    for write in samples:
        pipe = client.pipeline(transaction=False)
        queue_write(pipe, write)
        sent = tuple(str(command[0][0]).lower() for command in pipe.command_stack)
        assert sent == BATCHED[type(write).__name__], type(write).__name__
    assert set(COMMANDS_OF["write_batch"]) == {c for sent in BATCHED.values() for c in sent}


def test_a_forbidden_command_is_refused_even_when_declared() -> None:
    with pytest.raises(ValueError, match="flushall"):
        commands_for("agent", {**COMMANDS_OF, "read_ranges": ("getrange", "FLUSHALL")})


def test_every_broker_method_and_job_rule_says_what_it_sends() -> None:
    public = {
        name
        for name, member in inspect.getmembers(RedisBroker, inspect.iscoroutinefunction)
        if not name.startswith("_") and name not in ("connect", "disconnect", "call")
    }
    public.add("subscribe")  # a context manager, not a coroutine
    assert public <= set(COMMANDS_OF)
    rules = {n for n, _ in inspect.getmembers(RedisRules, inspect.iscoroutinefunction) if n[0] != "_"}
    assert rules == set(SCRIPT_COMMANDS)
    assert SCRIPT_COMMANDS["enqueue"] == ("eval", "exists", "ltrim", "publish", "rpush", "set", "xadd")
    for service in SERVICES:
        assert set(SERVICE_CALLS[service]) <= set(COMMANDS_OF), service


def test_every_channel_has_an_owner_declaration() -> None:
    named = {value for name, value in vars(topics).items() if name.endswith("_CHANNEL")}
    assert named == {declared.channel for declared in CHANNEL_GRANTS}
    for declared in CHANNEL_GRANTS:
        assert declared.publish and declared.subscribe, declared.channel


def test_every_key_the_stores_build_has_an_owner_declaration() -> None:
    """A new key without an ACCESS entry fails here (the stack test also scans a live Redis)."""
    built = [
        job_keys.QUEUE,
        job_keys.WORKERS,
        job_keys.INDEX,
        *(
            make("job-1")
            for make in (job_keys.record_key, job_keys.cancel_key, job_keys.lease_key, job_keys.taken_key)
        ),
        *job_keys.kept_keys("job-1"),
        hoststore._HOSTS_KEY,
        history_store.chunk_key("web-1", Tier(60, 86400), 1_800_000_000),
        chatstore._HISTORY_KEY,
        auditstore._STREAM,
        sessions._session_key("cookie"),
        alert_outbox._OUTBOX,
        alert_outbox._alive_key("gateway-1"),
        alert_store._LEASE,
        alert_store._STATE,
        alert_store._RECENT,
        alert_store._SILENCES,
        term_store.QUEUE,
        term_store._INDEX,
        term_store._term_key("t1"),
        term_store._cast_key("t1"),
        filestore.FILES,
        filestore.content_key("0" * 32),
    ]
    assert [key for key in built if not owned(key)] == []
    owners = [
        job_keys,
        hoststore,
        history_store,
        chatstore,
        auditstore,
        sessions,
        alert_outbox,
        alert_store,
        term_store,
        filestore,
    ]
    assert len(KEY_GRANTS) == sum(len(module.ACCESS) for module in owners)
    assert not owned(hoststore._HOSTS_KEY.replace("hosts", "something-new"))


def test_uploaded_files_are_the_gateways_to_write_the_workers_to_read_and_no_agents() -> None:
    assert key_rules("gateway", filestore.ACCESS) == [f"~{filestore.FILES}", "~fleetdeck:file:*"]
    assert key_rules("worker", filestore.ACCESS) == [f"%R~{filestore.FILES}", "%R~fleetdeck:file:*"]
    assert key_rules("agent", filestore.ACCESS) == []
