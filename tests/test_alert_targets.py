"""`@alert=NAME` in exec targets: the hosts where rule NAME fires now, with `!`, on the session
Redis with each service on its own ACL user (the gateway's lease, commits and silences included:
the session fixture fails the run if Redis refused any of them)."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx

from testbed.procs import start_agent, start_gateway, wait_until
from tests.support.alertstack import expect_transition, subscribed
from tests.support.jobs import run_job
from tests.support.stacks import ExecStack, Tokens
from tests.support.wsclient import WsClient

TARGET = "127.0.0.9"  # an SSH host of the session fleet, where agent alert-target says it is
OTHER = "127.0.0.10"


async def test_an_exec_on_alert_name_runs_where_the_rule_fires(
    exec_stack: ExecStack, tokens: Tokens, logs: Path, tmp_path: Path
) -> None:
    users = exec_stack.users
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n"
        "  - {name: target-hot, expr: total >= 0, targets: alert-target}\n"
        "  - {name: never, expr: total > 1000, targets: alert-target}\n"
    )
    agent = start_agent("alert-target", users.url("agent"), logs, 0.5, FLEETDECK_AGENT_ADDRESS=TARGET)
    gateway = start_gateway(
        users.url("gateway"),
        logs,
        tokens.file,
        name="gateway-alert-targets",
        FLEETDECK_JOB_KEY_FILE=users.job_key,
        FLEETDECK_ALERT_RULES=str(rules),
    )
    try:
        watcher, _ = await subscribed(gateway, tokens.viewer)
        await expect_transition(watcher, "target-hot", "alert-target", "firing")
        operator = await WsClient.open(gateway.ws_url, tokens.operator)
        tag = f"alert-{uuid.uuid4().hex[:8]}"
        job, results, done = await run_job(operator, "@alert=target-hot", f"echo {tag}")
        assert job["hosts"] == 1 and [r["host"] for r in results] == [TARGET]
        assert done["summary"] == {"ok": 1}
        wait_until(lambda: exec_stack.fleet.commands(tag), 20, what="the command on the alerting host")
        assert {row["host"] for row in exec_stack.fleet.commands(tag)} == {TARGET}
        job, results, _ = await run_job(operator, f"{TARGET},{OTHER},!@alert=target-hot", f"echo {tag}-not")
        assert [r["host"] for r in results] == [OTHER]
        as_operator = {"Authorization": f"Bearer {tokens.operator}"}
        for targets, says in (
            ("@alert=nope", "there is no alert rule named 'nope'"),
            ("@alert=never", "alert rule never fires on no host now"),
        ):
            refused = httpx.post(
                gateway.url + "/api/jobs", json={"targets": targets, "command": "id"}, headers=as_operator
            )
            assert refused.status_code == 422 and says in refused.json()["message"], refused.text
        # Silences on the gateway's own ACL user too: made, listed and ended.
        silence = {"rule": "target-hot", "for": "1h", "comment": "checked by a test"}
        made = httpx.post(gateway.url + "/api/alerts/silences", json=silence, headers=as_operator)
        assert made.status_code == 201, made.text
        ended = httpx.delete(f"{gateway.url}/api/alerts/silences/{made.json()['id']}", headers=as_operator)
        assert ended.status_code == 200 and ended.json()["active"] is False
        await operator.close()
        await watcher.close()
    finally:
        gateway.stop()
        agent.stop()
