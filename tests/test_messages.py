"""The v1 frame models: what the parser accepts, and the errors it gives for what it refuses."""

from __future__ import annotations

import json

import pytest

from fleetdeck_common.messages import (
    HOST_STATUSES,
    STATUS_TONES,
    CpuSample,
    Exec,
    ProtocolError,
    Result,
    Subscribe,
    TermClose,
    TermClosed,
    TermInput,
    TermOpen,
    TermResize,
    Watch,
    dump,
    parse_client_frame,
)


def test_valid_frames_parse_into_their_models() -> None:
    assert isinstance(parse_client_frame('{"type":"subscribe","topics":["cpu","chat"]}'), Subscribe)
    changes = parse_client_frame('{"type":"subscribe","topics":["hosts"],"hosts_format":"changes"}')
    assert isinstance(changes, Subscribe) and changes.hosts_format == "changes"
    frame = parse_client_frame('{"type":"exec","targets":"127.0.0.1","command":"uptime","ref":"r1"}')
    assert isinstance(frame, Exec)
    assert frame.timeout == 30 and frame.ref == "r1"
    watch = parse_client_frame('{"type":"watch","job":"abc123","after":7}')
    assert isinstance(watch, Watch) and watch.after == 7


@pytest.mark.parametrize(
    ("raw", "code", "fragment"),
    [
        ("not json", "bad_request", "not valid JSON"),
        ("[1,2]", "bad_request", "JSON object"),
        ('{"topics":["cpu"]}', "bad_request", "no 'type'"),
        ('{"type":"launch"}', "unknown_type", "unknown type 'launch'"),
        ('{"type":"subscribe","topics":["disk"]}', "bad_request", "topics.0"),
        ('{"type":"subscribe","topics":"cpu"}', "bad_request", "topics"),
        ('{"type":"chat","text":""}', "bad_request", "text"),
        ('{"type":"chat","text":"' + "x" * 2001 + '"}', "bad_request", "text"),
        ('{"type":"exec","targets":"127.0.0.1","command":"ls","timeout":"soon"}', "bad_request", "timeout"),
        ('{"type":"exec","targets":"127.0.0.1","command":"ls","timeout":-1}', "bad_request", "timeout"),
        ('{"type":"exec","targets":"127.0.0.1"}', "bad_request", "command"),
        ('{"type":"exec","targets":"127.0.0.1","command":"' + "x" * 9000 + '"}', "bad_request", "command"),
        ('{"type":"exec","targets":"127.0.0.1","command":"   "}', "bad_request", "the command is blank"),
        ('{"type":"exec","targets":"127.0.0.1","command":" \\t\\n "}', "bad_request", "blank"),
        ('{"type":"exec","targets":"127.0.0.1","command":"ls\\u0000x"}', "bad_request", "NUL byte"),
        ('{"type":"subscribe","topics":["fleet"],"hosts":["a"]}', "bad_request", "narrows the cpu topic"),
        (
            '{"type":"subscribe","topics":["fleet"],"hosts_format":"changes"}',
            "bad_request",
            "subscribe to hosts",
        ),
        ('{"type":"subscribe","topics":["hosts"],"hosts_format":"delta"}', "bad_request", "hosts_format"),
        ('{"type":"watch","job":"../etc"}', "bad_request", "job"),
        ('{"type":"watch","job":"abc","after":-1}', "bad_request", "after"),
        ('{"type":"chat","text":"hi","admin":true}', "bad_request", "admin"),
    ],
)
def test_invalid_frames_are_refused_with_a_reason(raw: str, code: str, fragment: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_client_frame(raw)
    assert caught.value.code == code
    assert fragment in caught.value.message


def test_error_keeps_the_clients_ref() -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_client_frame('{"type":"chat","text":"","ref":"m-9"}')
    assert caught.value.frame().ref == "m-9"


def test_dump_omits_absent_optionals_but_keeps_null_exit_codes() -> None:
    result = Result(
        job="j",
        seq=1,
        host="h",
        status="timeout",
        exit_code=None,
        stdout="",
        stderr="",
        duration_ms=5,
        truncated=False,
    )
    data = json.loads(dump(result))
    assert data["exit_code"] is None
    assert "error" not in data


def test_cpu_sample_rejects_impossible_values() -> None:
    with pytest.raises(ValueError, match="total"):
        CpuSample(host="h", ts=1.0, total=140.0, percpu=[1.0], mem=1.0, load=[0, 0, 0])
    with pytest.raises(ValueError, match="load"):
        CpuSample(host="h", ts=1.0, total=1.0, percpu=[1.0], mem=1.0, load=[0, 0])


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_deeply_nested_frames_are_a_bad_request_not_a_crash(depth: int) -> None:
    nested = "[" * depth + "]" * depth
    for raw in (nested, '{"type":"chat","text":' + nested + ',"ref":"deep"}'):
        with pytest.raises(ProtocolError) as caught:
            parse_client_frame(raw)
        assert caught.value.code == "bad_request" and "nests too deeply" in caught.value.message


def test_every_host_status_has_a_tone() -> None:
    assert set(STATUS_TONES) == set(HOST_STATUSES)


def test_terminal_frames_parse_and_bad_ones_name_the_field_and_keep_the_ref() -> None:
    opened = parse_client_frame('{"type":"term_open","host":"web1","cols":120,"rows":40,"ref":"t1"}')
    assert isinstance(opened, TermOpen) and (opened.cols, opened.rows, opened.ref) == (120, 40, "t1")
    assert isinstance(parse_client_frame('{"type":"term_input","term":"ab12","data":"\\u0003"}'), TermInput)
    assert isinstance(
        parse_client_frame('{"type":"term_resize","term":"ab12","cols":1,"rows":1}'), TermResize
    )
    assert isinstance(parse_client_frame('{"type":"term_close","term":"ab12"}'), TermClose)
    refusals = {
        '{"type":"term_open","host":"web1","cols":0,"ref":"r"}': "cols",
        '{"type":"term_open","host":"web1","rows":501,"ref":"r"}': "rows",
        '{"type":"term_open","host":"","ref":"r"}': "host",
        '{"type":"term_resize","term":"ab12","cols":1001,"rows":2,"ref":"r"}': "cols",
        '{"type":"term_input","term":"ab12","data":"' + "x" * 16385 + '","ref":"r"}': "data",
        '{"type":"term_input","term":"../x","data":"a","ref":"r"}': "term",
    }
    for raw, field in refusals.items():
        with pytest.raises(ProtocolError) as caught:
            parse_client_frame(raw)
        assert caught.value.code == "bad_request" and caught.value.ref == "r"
        assert caught.value.message.startswith(f"invalid {json.loads(raw)['type']}: {field}")
    closed = dump(TermClosed(term="ab12", exit_code=None, reason="closed by alice"))
    assert json.loads(closed) == {
        "type": "term_closed",
        "term": "ab12",
        "exit_code": None,
        "reason": "closed by alice",
    }
