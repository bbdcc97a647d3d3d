"""Who may cancel whose job: the rule in `services.cancelrule`, case by case (pure)."""

from __future__ import annotations

import time

from fleetdeck_common.messages import Job
from fleetdeck_common.targets import TargetPolicy
from fleetdeck_gateway.auth.identity import Identity
from fleetdeck_gateway.services.cancelrule import cancel_refusal

POLICY = TargetPolicy()


def job(targets: str, by: str = "carol", resolved: str | None = None) -> Job:
    return Job(
        job="0123456789abcdef",
        targets=targets,
        command="id",
        hosts=2,
        by=by,
        ts=1.0,
        state="running",
        resolved_targets=resolved,
    )


def test_a_viewer_cancels_nothing() -> None:
    viewer = Identity("bob", "viewer", "0" * 64)
    refusal = cancel_refusal(viewer, job("127.0.0.2", by="bob"), POLICY)
    assert refusal == "cancelling jobs needs the operator role"


def test_an_unscoped_operator_cancels_anyones_job() -> None:
    assert cancel_refusal(Identity("alice", "operator", "0" * 64), job("127.0.0.[2-3]"), POLICY) is None


def test_an_expired_token_cancels_nothing_not_even_its_own() -> None:
    expired = Identity("alice", "operator", "0" * 64, expires=int(time.time()) - 1)
    assert cancel_refusal(expired, job("127.0.0.2", by="alice"), POLICY) == "alice's token has expired"


def test_a_scoped_operator_cancels_its_own_job_and_others_inside_its_targets() -> None:
    scoped = Identity("alice", "operator", "0" * 64, scope="127.0.0.0/29")
    assert cancel_refusal(scoped, job("10.0.0.1", by="alice"), POLICY) is None
    assert cancel_refusal(scoped, job("127.0.0.[2-3]"), POLICY) is None


def test_a_scoped_operator_is_refused_a_job_reaching_outside_its_targets() -> None:
    scoped = Identity("alice", "operator", "0" * 64, scope="127.0.0.2")
    refusal = cancel_refusal(scoped, job("127.0.0.[2-3]"), POLICY)
    assert refusal is not None
    assert "127.0.0.3" in refusal and "started by carol" in refusal and "(127.0.0.2)" in refusal


def test_label_selectors_are_judged_by_the_hosts_they_resolved_to() -> None:
    scoped = Identity("alice", "operator", "0" * 64, scope="127.0.0.2")
    assert cancel_refusal(scoped, job("@role=web", resolved="127.0.0.2"), POLICY) is None
    assert cancel_refusal(scoped, job("@role=web", resolved="127.0.0.[2-3]"), POLICY) is not None


def test_targets_that_no_longer_expand_are_refused_with_a_reason() -> None:
    scoped = Identity("alice", "operator", "0" * 64, scope="127.0.0.2")
    refusal = cancel_refusal(scoped, job("@role=web"), POLICY)  # a selector never resolved
    assert refusal is not None and "cannot tell whether job" in refusal
