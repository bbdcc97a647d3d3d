"""Who may cancel whose job: the rule, in one place.

- A viewer cancels nothing.
- An operator may cancel any job, whoever started it: cancelling is the brake, and whoever is on
  duty must be able to pull it when a colleague's command goes wrong and they are not there.
  Every cancel is audited, and the job shows `cancelled_by`.
- An operator whose token is limited with `--targets` may cancel its own jobs, and others' only
  when every host of the job is inside its targets: stopping a command half-way is an action on
  those hosts, and such a token acts on no host outside its targets.
- An expired token cancels nothing.
"""

from __future__ import annotations

from fleetdeck_common.messages import Job
from fleetdeck_common.scope import parse_scope
from fleetdeck_common.targets import TargetError, TargetPolicy, expand_targets

from ..auth.identity import Identity


def cancel_refusal(who: Identity, job: Job, policy: TargetPolicy) -> str | None:
    """Why `who` may not cancel `job`, or None if they may."""
    if not who.is_operator:
        return "cancelling jobs needs the operator role"
    if who.expired():
        return f"{who.name}'s token has expired"
    if who.scope is None or job.by == who.name:
        return None
    try:
        # Label selectors were resolved when the job was queued; expansion is bounded by the policy.
        hosts = expand_targets(job.resolved_targets or job.targets, policy)
    except TargetError:
        return f"cannot tell whether job {job.job}'s hosts are inside the targets of {who.name}'s token"
    outside = parse_scope(who.scope).first_outside(hosts)
    if outside is None:
        return None
    return (
        f"job {job.job} (started by {job.by}) runs on {outside}, outside the targets "
        f"{who.name}'s token may reach ({who.scope})"
    )
