"""Creates a workflow-task backlog on a task queue and verifies it through the deprecated ENHANCED
mode of `DescribeTaskQueue` (legacy build-id selection).

Without `--build-id`: the queue has no versioning at all; the N workflows land on the unversioned
queue and `versions={unversioned: true}` must report them under the key "".

With `--build-id B`: first inserts a (deprecated, v0.2 "rules-based") build-id assignment rule
targeting B on the queue, so new workflows are assigned to B; then `versions={build_ids: [B]}`
must report them under the key B. The server needs
`--dynamic-config-value frontend.workerVersioningRuleAPIs=true` for the rule (otherwise:
PERMISSION_DENIED "Worker versioning v0.2 (Rules-based, deprecated) is disabled on this
namespace."). The ENHANCED describe itself needs no dynamic config.

No worker is involved: the workflows (type `Noop`) just stay queued. Also records what the other
selections (`all_active`, `all_active + unversioned`, no selection) return, without asserting on
them (see the notes printed under "observed"). Prints one JSON line on stdout; exits non-zero on
failure (reason on stderr).
"""
import argparse
import asyncio
import json
import os
import sys
import time
import uuid

from temporalio.api.enums.v1 import DescribeTaskQueueMode, TaskQueueType
from temporalio.api.taskqueue.v1 import (
    BuildIdAssignmentRule,
    TaskQueue,
    TaskQueueVersionSelection,
)
from temporalio.api.workflowservice.v1 import (
    DescribeTaskQueueRequest,
    GetWorkerVersioningRulesRequest,
    UpdateWorkerVersioningRulesRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError

START = time.monotonic()
WORKFLOW = TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW


def log(msg: str) -> None:
    print(f"legacy_build_id_backlog: [{time.monotonic() - START:5.1f}s] {msg}", file=sys.stderr, flush=True)


def summarize(resp) -> dict:
    """versions_info as {build_id: {queue_type: backlog}} ("" = unversioned)."""
    return {
        bid: {TaskQueueType.Name(t): ti.stats.approximate_backlog_count for t, ti in vi.types_info.items()}
        for bid, vi in resp.versions_info.items()
    }


async def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--address", required=True)
    p.add_argument("--namespace", default="default")
    p.add_argument("--task-queue", required=True)
    p.add_argument("--build-id", help="assign new workflows to this build id (assignment rule)")
    p.add_argument("--workflows", type=int, required=True)
    p.add_argument("--timeout", type=float, default=25.0, help="budget for the poll, s")
    a = p.parse_args()

    client = await Client.connect(a.address, namespace=a.namespace)
    svc = client.workflow_service

    async def describe(sel):
        return await svc.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=a.namespace,
                task_queue=TaskQueue(name=a.task_queue),
                api_mode=DescribeTaskQueueMode.DESCRIBE_TASK_QUEUE_MODE_ENHANCED,
                versions=sel,
                task_queue_types=[WORKFLOW],
                report_stats=True,
            )
        )

    if a.build_id:
        rules = await svc.get_worker_versioning_rules(
            GetWorkerVersioningRulesRequest(namespace=a.namespace, task_queue=a.task_queue)
        )
        await svc.update_worker_versioning_rules(
            UpdateWorkerVersioningRulesRequest(
                namespace=a.namespace,
                task_queue=a.task_queue,
                conflict_token=rules.conflict_token,
                insert_assignment_rule=UpdateWorkerVersioningRulesRequest.InsertBuildIdAssignmentRule(
                    rule_index=0, rule=BuildIdAssignmentRule(target_build_id=a.build_id)
                ),
            )
        )
        log(f"assignment rule -> {a.build_id!r} inserted")
        key, sel = a.build_id, TaskQueueVersionSelection(build_ids=[a.build_id])
    else:
        key, sel = "", TaskQueueVersionSelection(unversioned=True)

    run = uuid.uuid4().hex[:8]
    for i in range(a.workflows):
        await client.start_workflow("Noop", id=f"legacy-{run}-{i}", task_queue=a.task_queue)
    log(f"started {a.workflows} workflows")

    # Approximate counts, cached by matching for matching.TaskQueueInfoByBuildIdTTL (5 s default)
    # per build id: poll until the expected key shows the whole backlog.
    deadline = time.monotonic() + a.timeout
    last = None
    while True:
        resp = await describe(sel)
        last = summarize(resp)
        if last.get(key, {}).get("TASK_QUEUE_TYPE_WORKFLOW", 0) >= a.workflows:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"no backlog of {a.workflows} under {key!r} in time; last versions_info: {last}")
        await asyncio.sleep(0.25)
    log(f"backlog visible: {last}")

    observed = {}
    for name, s in [
        ("all_active", TaskQueueVersionSelection(all_active=True)),
        ("all_active+unversioned", TaskQueueVersionSelection(all_active=True, unversioned=True)),
        ("no_selection", None),
    ]:
        try:
            observed[name] = summarize(await describe(s))
        except RPCError as e:
            observed[name] = f"{e.status.name}: {e.message}"

    print(
        json.dumps(
            {
                "backlog": last[key]["TASK_QUEUE_TYPE_WORKFLOW"],
                "key": key,
                "task_queue": a.task_queue,
                "versions_info": last,
                "observed": observed,
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    try:
        code = asyncio.run(main())
    except RPCError as e:
        log(f"FAILED: RPCError {e.status.name}: {e.message}")
        code = 1
    except Exception as e:  # noqa: BLE001 - report any failure as a non-zero exit
        log(f"FAILED: {type(e).__name__}: {e}")
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    # The SDK's native runtime occasionally aborts during interpreter teardown (seen as a rare
    # SIGSEGV/SIGABRT after all work is done); the result is already printed, so skip teardown.
    os._exit(code)
