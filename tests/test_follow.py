"""Following a job by `seq`: each result once and in order, `done` once after all, gaps noticed."""

from __future__ import annotations

from fleetdeck_common.follow import JobFollower, Verdict
from fleetdeck_common.messages import Done, Result
from tests.support.fakes import ok_result


def result(seq: int) -> Result:
    return ok_result("j", seq, f"h{seq}")


def done(hosts: int) -> Done:
    return Done(job="j", summary={"ok": hosts}, duration_ms=5)


def test_results_in_order_pass_once_and_repeats_are_skipped() -> None:
    follower = JobFollower("j")
    assert [follower.offer(result(n)) for n in (1, 2, 2, 1, 3)] == [
        Verdict.DELIVER,
        Verdict.DELIVER,
        Verdict.SKIP,
        Verdict.SKIP,
        Verdict.DELIVER,
    ]
    assert follower.last_seq == 3


def test_a_result_past_the_next_is_a_gap_and_does_not_advance() -> None:
    follower = JobFollower("j", after=2)
    assert follower.offer(result(4)) is Verdict.GAP
    assert follower.last_seq == 2
    assert follower.offer(result(3)) is Verdict.DELIVER


def test_done_waits_for_every_result_then_passes_once() -> None:
    follower = JobFollower("j")
    follower.offer(result(1))
    assert follower.offer(done(2)) is Verdict.GAP
    follower.offer(result(2))
    assert follower.offer(done(2)) is Verdict.DELIVER
    assert follower.offer(done(2)) is Verdict.SKIP


def test_stored_frames_are_the_record_and_never_a_gap() -> None:
    follower = JobFollower("j")
    assert follower.offer(result(2), stored=True) is Verdict.DELIVER  # a gap in the record is passed on
    assert follower.offer(done(3), stored=True) is Verdict.DELIVER
    assert follower.offer(result(2), stored=True) is Verdict.SKIP
