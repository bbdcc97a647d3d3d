"""Hostile input for the fuzz suite (tests/test_hostile_input.py): WebSocket frames and target
expressions as hypothesis strategies, each frame with what the protocol says must come back.

A frame's expectation is known from how it was built, not from the parser under test: garbage and
frames of the wrong shape must get `bad_request`, unknown types `unknown_type`, frames over 64 KiB
the documented close 1009, and well-formed frames with hostile values a normal answer or a refusal
for what they ask (`invalid_targets`, `forbidden`, `not_found`), never `bad_request`.

The strategies draw few values each (a draw costs about 0.1 ms), so that ten thousand frames and
ten thousand expressions fit in the normal test run.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any

from hypothesis import strategies as st

from fleetdeck_common.messages import (
    CLIENT_TYPES,
    MAX_CHAT_CHARS,
    MAX_COMMAND_CHARS,
    MAX_REF_CHARS,
    MAX_TARGETS_CHARS,
    MAX_TERM_COLS,
    MAX_TERM_INPUT_CHARS,
    MAX_TERM_ROWS,
    MAX_TIMEOUT_SECONDS,
    TOPICS,
)

MAX_FRAME_BYTES = 64 * 1024  # the documented limit: a bigger frame is closed with 1009


class Expect(Enum):
    BAD_REQUEST = "bad_request"  # an `error` with this code
    UNKNOWN_TYPE = "unknown_type"
    VALID = "valid"  # well-formed: a normal reply, or a refusal for what it asks, never for its shape
    ANY = "any"  # random input that happens to name a known type: any answer, or none if it is a chat
    CLOSE = "close"  # the documented close: 1009 for a frame over 64 KiB


_TRAILING_REF = re.compile(r'"ref":\s*("(?:[^"\\]|\\.)*")\s*\}\s*$')


@dataclass(frozen=True)
class Probe:
    payload: str | bytes  # bytes go as a binary frame
    expect: Expect
    kind: str  # which generator made it, for failure messages

    def ref(self) -> str | None:
        """The ref the answer must carry: the frame's own, if it has a usable one."""
        text = self.payload.decode("utf-8", "replace") if isinstance(self.payload, bytes) else self.payload
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            return None
        ref = data.get("ref") if isinstance(data, dict) else None
        return ref if isinstance(ref, str) and 0 < len(ref) <= MAX_REF_CHARS else None

    def refs(self) -> set[str | None]:
        """The refs an answer may carry: the frame's own; or none, when the frame nests so deep
        that the parser gives up before it reaches the ref ("frame nests too deeply")."""
        text = self.payload.decode("utf-8", "replace") if isinstance(self.payload, bytes) else self.payload
        if text.count("[") + text.count("{") > 100:
            # Too deep for Python's json (RecursionError), not for the gateway's parser: read a
            # top-level ref that ends the frame by its pattern.
            tail = _TRAILING_REF.search(text)
            found = json.loads(tail.group(1)) if tail else None
            usable = found if isinstance(found, str) and 0 < len(found) <= MAX_REF_CHARS else None
            return {self.ref(), usable, None}
        return {self.ref()}

    @property
    def answered_directly(self) -> bool:
        """Every frame gets a direct answer, except a well-formed chat (it is broadcast instead)."""
        if self.expect is Expect.ANY:
            return False
        return not (self.expect is Expect.VALID and self.kind.endswith("valid:chat"))

    def describe(self) -> str:
        shown = self.payload[:200]
        return f"{self.kind} ({self.expect.value}, {len(self.payload)} long): {shown!r}"


def classify(text: str) -> Expect | None:
    """What the protocol promises for `text` from its JSON shape alone (None: a known type, so it
    depends on the fields)."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return Expect.BAD_REQUEST
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        return Expect.BAD_REQUEST
    if data["type"] not in CLIENT_TYPES:
        return Expect.UNKNOWN_TYPE
    return None


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _probe_text(text: str, expect: Expect, kind: str) -> Probe:
    if len(text.encode()) > MAX_FRAME_BYTES:
        return Probe(text, Expect.CLOSE, kind + ":oversized")
    return Probe(text, expect, kind)


def _probe(value: Any, expect: Expect, kind: str) -> Probe:
    return _probe_text(_dumps(value), expect, kind)


# --- building blocks -----------------------------------------------------------------------------

# What a person, a terminal or an attacker might type: control characters, bidi overrides, HTML,
# shell, quotes, emoji, the replacement character, the highest code point.
SNIPPETS = [
    *"\x00\x01\x07\x08\x1b\x7f\t\n\r",
    "\u202e",
    "\u2028",
    "\ufeff",
    "\ufffd",
    "\U0010ffff",
    '"',
    "\\",
    "</script><script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "${IFS}",
    "$(id)",
    "`true`",
    "; false",
    "🔥🔥",
    "é",
    "%00",
    "\\u0000",
    "{{7*7}}",
    "' OR 1=1 --",
    "../../etc/passwd",
    "null",
    "true",
    "[]",
    "{}",
]
TEXT = st.text(max_size=30) | st.sampled_from(SNIPPETS)
NONEMPTY_TEXT = st.text(min_size=1, max_size=30) | st.sampled_from([s for s in SNIPPETS if s])


def repeated(low: int, high: int) -> st.SearchStrategy[str]:
    """Long text built from one snippet (drawing every character would be slow)."""
    return st.builds(
        lambda snippet, size: (snippet * (size // len(snippet) + 1))[:size],
        st.sampled_from([s for s in SNIPPETS if s] + ["x", "ab"]),
        st.integers(low, high),
    )


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)

# Every choice of topics, with repeats, as one draw.
TOPIC_LISTS = [list(c) for n in range(1, 4) for c in itertools.product(TOPICS, repeat=n)]
JOB_ID_CHARS = "abcdefABCDEF0123456789_-"
JOB_ID = st.text(JOB_ID_CHARS, min_size=1, max_size=64)
REF = st.text(min_size=1, max_size=MAX_REF_CHARS)


def _command() -> st.SearchStrategy[str]:
    """Commands for exec frames, harmless even if something ran them: a fixed few, or a shell
    comment (`#` and no newline) holding any text. The fuzzed gateways have no worker, but a
    generated command must never be able to do anything on a machine that runs the tests."""
    return st.sampled_from(["true", ":", "echo fuzz"]) | st.text(max_size=60).map(
        lambda text: "# " + text.replace("\n", " ").replace("\r", " ").replace("\x00", " ")
    )


_FIELDS_OF = {
    "subscribe": ["topics", "hosts"],
    "unsubscribe": ["topics"],
    "chat": ["text"],
    "exec": ["targets", "command", "timeout"],
    "cancel": ["job"],
    "watch": ["job", "after"],
    "term_open": ["host", "cols", "rows"],
    "term_input": ["term", "data"],
    "term_resize": ["term", "cols", "rows"],
    "term_close": ["term"],
}
_REQUIRED = {
    "subscribe": ["topics"],
    "unsubscribe": ["topics"],
    "chat": ["text"],
    "exec": ["targets", "command"],
    "cancel": ["job"],
    "watch": ["job"],
    "term_open": ["host"],
    "term_input": ["term", "data"],
    "term_resize": ["term", "cols", "rows"],
    "term_close": ["term"],
}


@st.composite
def valid_frame(draw: st.DrawFn) -> dict[str, Any]:
    """A well-formed client frame, its values as hostile as the protocol allows."""
    kind = draw(st.sampled_from(sorted(CLIENT_TYPES)))
    frame: dict[str, Any] = {"type": kind}
    if kind in ("subscribe", "unsubscribe"):
        frame["topics"] = draw(st.sampled_from(TOPIC_LISTS))
        if kind == "subscribe" and "cpu" in frame["topics"] and draw(st.booleans()):
            frame["hosts"] = draw(st.lists(NONEMPTY_TEXT, max_size=5))
    elif kind == "chat":
        frame["text"] = draw(NONEMPTY_TEXT | repeated(1, MAX_CHAT_CHARS))
    elif kind == "exec":
        frame["targets"] = draw(EXEC_TARGETS)
        frame["command"] = draw(_command())
        if draw(st.booleans()):
            frame["timeout"] = draw(st.floats(min_value=0.001, max_value=MAX_TIMEOUT_SECONDS))
    elif kind.startswith("term_"):
        # The fuzzed gateways have no worker: a term_open is refused, so no terminal ever opens.
        if kind == "term_open":
            frame["host"] = draw(EXEC_TARGETS.filter(lambda t: 0 < len(t) <= 253))
        else:
            frame["term"] = draw(JOB_ID)
        if kind == "term_input":
            frame["data"] = draw(NONEMPTY_TEXT | repeated(1, 2000))  # far below 64 KiB, escaped
        if kind == "term_resize" or (kind == "term_open" and draw(st.booleans())):
            frame["cols"] = draw(st.integers(1, MAX_TERM_COLS))
            frame["rows"] = draw(st.integers(1, MAX_TERM_ROWS))
    else:
        frame["job"] = draw(JOB_ID)
        if kind == "watch" and draw(st.booleans()):
            frame["after"] = draw(st.integers(0, 2**62))
    if draw(st.booleans()):
        frame["ref"] = draw(REF)
    return frame


# Values of the wrong JSON type or out of range for each field (wrong under pydantic's lax
# coercion too: no booleans for numbers, no numeric strings).
_NOT_A_STRING = st.integers() | st.booleans() | st.sampled_from([[], [1], {}, {"a": "b"}, 1.5])
_NOT_A_NUMBER = st.sampled_from(["soon", "abc", "", [], [1], {}, {"n": 1}, None])
_NOT_A_LIST = st.integers() | st.sampled_from(["cpu", {}, {"cpu": 1}, None, 1.5])
_WRONG: dict[str, st.SearchStrategy[Any]] = {
    "topics": _NOT_A_LIST.filter(lambda v: v is not None)
    | st.sampled_from([[], ["disk"], ["CPU"], ["cpu", 1], ["cpu"] * (len(TOPICS) + 1), [None]]),
    "hosts": _NOT_A_LIST.filter(lambda v: v is not None) | st.sampled_from([[1], [""], ["x" * 254], [None]]),
    "text": _NOT_A_STRING | st.sampled_from([None, ""]) | repeated(MAX_CHAT_CHARS + 1, 20000),
    "targets": _NOT_A_STRING | st.sampled_from([None, ""]) | repeated(MAX_TARGETS_CHARS + 1, 20000),
    "command": _NOT_A_STRING
    | st.sampled_from([None, "", "   ", "\t\n", "ls\x00-la", "\x00"])
    | repeated(MAX_COMMAND_CHARS + 1, 20000),
    "timeout": _NOT_A_NUMBER | st.sampled_from([0, -1, MAX_TIMEOUT_SECONDS + 1, 10**30, "NaN", "inf"]),
    "job": _NOT_A_STRING
    | st.sampled_from([None, "", "../etc/passwd", "a b", "x" * 65, "j\x00b", "é", "a/b"]),
    "after": _NOT_A_NUMBER | st.sampled_from([-1, 1.5, -(2**40), "1.5"]),
    "host": _NOT_A_STRING | st.sampled_from([None, ""]) | repeated(254, 2000),
    "cols": _NOT_A_NUMBER | st.sampled_from([0, -1, 1.5, MAX_TERM_COLS + 1, 10**30]),
    "rows": _NOT_A_NUMBER | st.sampled_from([0, -1, 1.5, MAX_TERM_ROWS + 1, 10**30]),
    "term": _NOT_A_STRING | st.sampled_from([None, "", "../etc/passwd", "a b", "x" * 65, "t\x00", "é"]),
    "data": _NOT_A_STRING | st.sampled_from([None, ""]) | repeated(MAX_TERM_INPUT_CHARS + 1, 20000),
    "ref": _NOT_A_STRING | st.just("") | repeated(MAX_REF_CHARS + 1, 400),
}


def nested(depth: int, shape: str, core: str) -> str:
    """JSON text nested `depth` levels deep (built as text: the json module cannot encode it)."""
    opens = {"list": "[", "object": '{"a":', "both": '[{"a":'}[shape]
    closes = {"list": "]", "object": "}", "both": "}]"}[shape]
    return opens * depth + core + closes * depth


NESTED = st.builds(
    nested,
    st.integers(200, 9000),
    st.sampled_from(["list", "object", "both"]),
    st.sampled_from(["1", '"x"', "{}"]),
)
_PLACEHOLDER = "\x00nested\x00"


@st.composite
def malformed_frame(draw: st.DrawFn) -> Probe:
    """A frame of a known type made wrong in one way: a field of the wrong type or out of range,
    a required field missing, an unknown field, or a value nested far too deep."""
    frame = draw(valid_frame())
    kind = frame["type"]
    how = draw(st.sampled_from(["wrong", "wrong", "missing", "unknown", "nested", "hosts-without-cpu"]))
    if how == "wrong":
        field = draw(st.sampled_from([*_FIELDS_OF[kind], "ref"]))
        if field == "hosts" and "cpu" not in frame["topics"]:
            field = "topics"
        frame[field] = draw(_WRONG[field])
    elif how == "missing":
        del frame[draw(st.sampled_from(_REQUIRED[kind]))]
    elif how == "unknown":
        name = draw(
            st.sampled_from(["admin", "role", "user", "__proto__", "", "Type", "types", "refs", "hostz"])
        )
        frame[name] = draw(JSON)
    elif how == "nested":
        frame[draw(st.sampled_from([*_FIELDS_OF[kind], "ref", "extra"]))] = _PLACEHOLDER
        text = _dumps(frame).replace(_dumps(_PLACEHOLDER), draw(NESTED))
        return _probe_text(text, Expect.BAD_REQUEST, f"malformed:nested:{kind}")
    else:
        frame = {
            "type": "subscribe",
            "topics": draw(st.sampled_from([["hosts"], ["fleet", "chat"]])),
            "hosts": [],
        }
    return _probe(frame, Expect.BAD_REQUEST, f"malformed:{how}:{kind}")


@st.composite
def hostile_valid_frame(draw: st.DrawFn) -> Probe:
    frame = draw(valid_frame())
    return _probe(frame, Expect.VALID, f"valid:{frame['type']}")


@st.composite
def garbage(draw: st.DrawFn) -> Probe:
    """Anything but a frame: random text, JSON that is not an object, objects without a string
    `type`, unknown types, whole frames nested deep, frames cut short."""
    how = draw(st.sampled_from(["text", "json", "no-type", "unknown-type", "deep", "truncated"]))
    if how == "text":
        text = draw(TEXT | st.text(max_size=300))
        return Probe(text, classify(text) or Expect.ANY, "garbage:text")
    if how == "json":
        value = draw(JSON)
        return _probe(value, classify(_dumps(value)) or Expect.ANY, "garbage:json")
    if how == "no-type":
        value = draw(st.dictionaries(TEXT, JSON_SCALARS, max_size=3))
        value["type"] = draw(_NOT_A_STRING | st.none())
        if draw(st.booleans()):
            del value["type"]
        return _probe(value, Expect.BAD_REQUEST, "garbage:no-type")
    if how == "unknown-type":
        kind = draw(
            st.sampled_from(
                ["Chat", "EXEC", "hello", "result", "job", "error", "subscribe ", "", "__proto__"]
            )
            | TEXT.filter(lambda t: t not in CLIENT_TYPES)
        )
        return _probe({"type": kind, "ref": "u"}, Expect.UNKNOWN_TYPE, "garbage:unknown-type")
    if how == "deep":
        text = draw(NESTED | st.builds(lambda n: "[" * n + "]" * n, st.integers(500, 30000)))
        return _probe_text(text, Expect.BAD_REQUEST, "garbage:deep")
    text = _dumps(draw(valid_frame()))
    cut = text[: draw(st.integers(0, max(len(text) - 1, 0)))]
    return Probe(cut, Expect.BAD_REQUEST, "garbage:truncated")


@st.composite
def binary_frame(draw: st.DrawFn) -> Probe:
    """A binary WebSocket frame: random bytes (invalid UTF-8 included), or another probe's bytes."""
    if draw(st.booleans()):
        data = draw(st.binary(max_size=200))
        return Probe(data, classify(data.decode("utf-8", "replace")) or Expect.ANY, "binary:random")
    inner = draw(st.one_of(garbage(), malformed_frame(), hostile_valid_frame()))
    payload = inner.payload if isinstance(inner.payload, bytes) else inner.payload.encode()
    return Probe(payload, inner.expect, "binary:" + inner.kind)


def _oversized(size: int, binary: bool) -> Probe:
    text = '{"type":"chat","text":"' + "x" * size + '"}'
    return Probe(text.encode() if binary else text, Expect.CLOSE, "oversized")


OVERSIZED = st.builds(_oversized, st.integers(MAX_FRAME_BYTES + 1, MAX_FRAME_BYTES + 4096), st.booleans())

FRAMES = st.one_of(garbage(), malformed_frame(), hostile_valid_frame(), binary_frame())


@st.composite
def connection_batches(draw: st.DrawFn, size: int) -> list[Probe]:
    """Frames for one connection; sometimes ending with one over 64 KiB, which closes it."""
    batch = draw(st.lists(FRAMES, min_size=size - 4, max_size=size))
    # Probes that turned out over 64 KiB close the connection: keep at most one, and last.
    closing = [p for p in batch if p.expect is Expect.CLOSE]
    batch = [p for p in batch if p.expect is not Expect.CLOSE]
    if closing:
        batch.append(closing[0])
    elif draw(st.integers(0, 15)) == 0:
        batch.append(draw(OVERSIZED))
    return batch


# --- target expressions ---------------------------------------------------------------------------


def _v4(number: int) -> str:
    return str(ipaddress.IPv4Address(number))


LOOPBACK = st.integers(127 << 24, (128 << 24) - 1).map(_v4)
ALLOWED_NET = st.integers(0x0A140000, 0x0A14FFFF).map(_v4)  # 10.20.0.0/16
ANY_V4 = st.integers(0, 2**32 - 1).map(_v4)
V6 = st.integers(0, 2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n))) | st.integers(0, 0xFFFF).map(
    lambda n: f"fd00::{n:x}"
)
ADDRESS = (
    LOOPBACK | ALLOWED_NET | ANY_V4 | V6 | V6.map(lambda a: f"[{a}]") | st.sampled_from(["fe80::1%eth0"])
)
WEIRD_NUMBER = st.integers(-5, 300).map(str) | st.sampled_from(
    ["²", "١٢", "0255", "00001", "9" * 40, "9" * 5000, "", "-", "+1", "1e3", "0x10", " 1", "99999999"]
)
NAMES = st.text("abcxyz019-.", min_size=1, max_size=20) | st.sampled_from(
    [
        "web01",
        "x.db.example.net",
        "db.example.net",
        "localhost",
        "a" * 300,
        "xn--80ak6aa92e",
        "WEB01",
        "web01.",
    ]
)
BIG_NETWORKS = [
    "127.0.0.0/18",
    "10.20.0.0/16",
    "127.0.0.0/8",
    "0.0.0.0/0",
    "::/0",
    "fd00::/8",
    "127.0.0.0/22",
]
NODESET_PARTS = st.lists(
    st.builds(lambda a, b: f"{a}-{b}", WEIRD_NUMBER, WEIRD_NUMBER)
    | WEIRD_NUMBER
    | st.sampled_from(["a", "b", "web", "01-16", "1-1024", "0-255", "1-99999999", ",", "[", "]", "-"]),
    min_size=1,
    max_size=4,
)


@st.composite
def term(draw: st.DrawFn) -> str:
    how = draw(
        st.sampled_from(
            ["address", "octet-range", "range", "cidr", "nodeset", "name", "label", "text", "net"]
        )
    )
    if how == "address":
        return draw(ADDRESS)
    if how == "octet-range":
        return f"{draw(LOOPBACK | ALLOWED_NET | ANY_V4)}-{draw(WEIRD_NUMBER)}"
    if how == "range":
        return f"{draw(ADDRESS)}-{draw(ADDRESS)}"
    if how == "cidr":
        return f"{draw(ADDRESS).strip('[]')}/{draw(st.integers(0, 128).map(str) | WEIRD_NUMBER)}"
    if how == "nodeset":
        head = draw(
            st.sampled_from(["web", "db-", "127.0.0.", "127.", "10.20.", "rack", "", "x.db.example.net"])
        )
        tail = draw(
            st.sampled_from(
                ["", ".0.0/18", ".0/24", "-n[01-16]", "]", "[", ".1", "[1-99999999]", ".0.[0-255]"]
            )
        )
        return f"{head}[{','.join(draw(NODESET_PARTS))}]{tail}"
    if how == "name":
        return draw(NAMES)
    if how == "label":
        return "@" + draw(
            st.sampled_from(["role=web", "role=everything", "role=outside", "role=none", "=", "a", ""])
        )
    if how == "text":
        return draw(TEXT)
    return draw(st.sampled_from(BIG_NETWORKS))


# Targets for exec frames: the grammar itself is fuzzed in test_hostile_input's own test; here a
# few draws give valid, refused and hostile expressions (the among them).
EXEC_TARGETS = st.sampled_from(
    [
        "127.0.0.2",
        "127.0.0.2-20,!127.0.0.7",
        "127.0.0.[2-9]",
        "8.8.8.8",
        "dns.google",
        "8.8.8.0/30",
        "127.0.0.0/18",
        "web[1-9999999]",
        "127.[0-255].0.0/18",
        ",".join(f"127.{n // 4}.{(n % 4) * 64}.0/18" for n in range(1024)),
        ",".join(["127.0.0.0/18"] * 1024),
        "@role=web",
        " ",
        "!127.0.0.1",
    ]
) | st.builds(lambda t: t or "127.0.0.2", st.text(max_size=40))


SEPARATORS = [",", " ", ", ", "\t", "\n", ",,", "\u3000", "\u00a0", ";", ""]
ALLOWED_TERM = (
    LOOPBACK
    | ALLOWED_NET
    | st.builds(lambda a, n: f"{a}-{n}", LOOPBACK, st.integers(0, 255))
    | st.builds(
        lambda a, p: f"{a}/{p}", LOOPBACK | ALLOWED_NET, st.sampled_from([20, 22, *range(24, 33), 32, 32])
    )
    | st.builds(lambda a, b: f"127.0.0.[{min(a, b)}-{max(a, b)}]", st.integers(0, 255), st.integers(0, 255))
    | st.sampled_from(["web01", "x.db.example.net", "rack[1-2].db.example.net", "[fd00::1]", "fd00::1-9"])
)
# A term's `!` (one in four is an exclusion) and the separator after it, as one draw.
AROUND = st.sampled_from([(bang, sep) for bang in ("", "", "", "!") for sep in SEPARATORS])


def _expression_kind(n: int) -> str:
    """Weights for the kinds of expression (by ranges of a drawn number: hypothesis favours the ends
    of a range and does not weight repeated choices, so the big, slow kinds sit in the middle)."""
    if 480 <= n < 500:
        return "networks"
    if 500 <= n < 520:
        return "repeat"
    if 520 <= n < 540:
        return "exclusions"
    if 400 <= n < 450:
        return "raw"
    if 600 <= n < 900:
        return "allowed"
    return "terms"


EXPRESSION_KINDS = st.integers(0, 999).map(_expression_kind)


@st.composite
def expressions(draw: st.DrawFn) -> str:
    """A target expression: terms (some `!`-excluded) with any separators; sometimes the same term
    thousands of times, a thousand distinct networks, or thousands of exclusions."""
    how = draw(EXPRESSION_KINDS)
    if how == "networks":  # the probe: many distinct large networks
        base, prefix = draw(st.sampled_from([(127, 18), (10, 18), (127, 24), (127, 16), (10, 20)]))
        step = 2 ** (32 - prefix)
        count = draw(st.integers(100, 1100))
        nets = (_v4((base << 24) + n * step) + f"/{prefix}" for n in range(count))
        return ",".join(nets)[:MAX_TARGETS_CHARS]
    if how == "repeat":  # one term (often a network) thousands of times
        repeated_term = draw(term() | st.sampled_from(BIG_NETWORKS))
        sep = draw(st.sampled_from([",", " ", ",!"]))
        return sep.join([repeated_term] * draw(st.integers(2, 3000)))[:MAX_TARGETS_CHARS]
    if how == "exclusions":  # a large network and a thousand exclusions that look at every host
        excluded = ",".join(f"!127.200.{n // 250}.{n % 250 + 1}" for n in range(draw(st.integers(10, 1500))))
        return (draw(st.sampled_from(BIG_NETWORKS)) + "," + excluded)[:MAX_TARGETS_CHARS]
    if how == "raw":
        return draw(st.text(max_size=100))
    if how == "allowed":  # inside the allowlist, so that expansions succeed too (or hit the cap)
        terms = draw(st.lists(st.tuples(AROUND, ALLOWED_TERM), min_size=1, max_size=4))
        return "".join(bang + text + sep for (bang, sep), text in terms)
    terms = draw(st.lists(st.tuples(AROUND, term()), min_size=1, max_size=5))
    return "".join(bang + text + sep for (bang, sep), text in terms)
