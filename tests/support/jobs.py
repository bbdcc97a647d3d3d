"""Run a job over /ws and collect what it reports."""

from __future__ import annotations

import uuid

from tests.support.wsclient import Frame, WsClient


async def collect_job(client: WsClient, job: str, timeout: float = 60) -> tuple[list[Frame], Frame]:
    """Every `result` of the job, in the order they arrive, and its `done` frame."""
    results: list[Frame] = []

    def collect(frame: Frame) -> bool:
        if frame["type"] == "result" and frame["job"] == job:
            results.append(frame)
        return bool(frame["type"] == "done" and frame["job"] == job)

    done = await client.expect(collect, timeout)
    return results, done


async def run_job(
    client: WsClient, targets: str, command: str, timeout: float = 30, wait: float = 60
) -> tuple[Frame, list[Frame], Frame]:
    """Submit over /ws and collect the job frame, every result and the done frame."""
    ref = uuid.uuid4().hex[:8]
    await client.send(
        {"type": "exec", "targets": targets, "command": command, "timeout": timeout, "ref": ref}
    )
    job = await client.expect(lambda f: f.get("ref") == ref)
    assert job["type"] == "job", job
    results, done = await collect_job(client, job["job"], wait)
    return job, results, done
