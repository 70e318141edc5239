"""Creates a Worker Deployment version with a workflow-task backlog on a Temporal server, and
verifies the backlog through `DescribeWorkerDeploymentVersion(report_task_queue_stats=true)`.

Steps: run a versioned worker (Python SDK) for `--deployment`/`--build-id` on each
`--task-queue` (repeatable: one version, several queues) until the version registers them all;
make it the deployment's current version; stop the workers; start `--workflows` workflows (type
`Noop`, which the workers registered) on each queue; then poll `DescribeWorkerDeploymentVersion`
until each workflow queue's `approximate_backlog_count` reaches the number of workflows. Prints one JSON line on stdout and exits 0 on success, non-zero on
failure (with the reason on stderr).
"""
import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
import uuid

from temporalio import workflow
from temporalio.api.enums.v1 import TaskQueueType, WorkerDeploymentVersionStatus
from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentVersionRequest,
    SetWorkerDeploymentCurrentVersionRequest,
)
from temporalio.api.deployment.v1 import WorkerDeploymentVersion as ProtoVersion
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.service import RPCError
from temporalio.worker import Worker, WorkerDeploymentConfig


@workflow.defn(name="Noop")
class Noop:
    @workflow.run
    async def run(self) -> None:
        return None


START = time.monotonic()


def log(msg: str) -> None:
    print(f"deployment_backlog: [{time.monotonic() - START:5.1f}s] {msg}", file=sys.stderr, flush=True)


async def poll(what: str, timeout: float, step, interval: float = 0.25):
    """Calls `step()` until it returns something other than None; fails after `timeout` s."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            r = await step()
            if r is not None:
                return r
        except RPCError as e:
            last = f"{e.status.name}: {e.message}"
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}" + (f" (last error: {last})" if last else ""))
        await asyncio.sleep(interval)


async def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--address", required=True)
    p.add_argument("--namespace", default="default")
    p.add_argument("--task-queue", required=True, action="append")
    p.add_argument("--deployment", required=True)
    p.add_argument("--build-id", required=True)
    p.add_argument("--workflows", type=int, required=True)
    p.add_argument("--timeout", type=float, default=25.0, help="overall budget for the polls, s")
    a = p.parse_args()

    client = await Client.connect(a.address, namespace=a.namespace)
    svc = client.workflow_service
    version = ProtoVersion(deployment_name=a.deployment, build_id=a.build_id)

    def describe():
        return svc.describe_worker_deployment_version(
            DescribeWorkerDeploymentVersionRequest(
                namespace=a.namespace, deployment_version=version, report_task_queue_stats=True
            )
        )

    # 1. A versioned worker polls the queue; the version registers (with the workflow queue)
    #    when the server sees its polls. Keep it polling until the version lists the queue.
    cfg = WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(deployment_name=a.deployment, build_id=a.build_id),
        use_worker_versioning=True,
        default_versioning_behavior=VersioningBehavior.PINNED,
    )
    async with contextlib.AsyncExitStack() as workers:
        for queue in a.task_queue:
            await workers.enter_async_context(
                Worker(client, task_queue=queue, workflows=[Noop], deployment_config=cfg)
            )

        async def registered():
            r = await describe()
            names = {(q.name, q.type) for q in r.version_task_queues}
            wanted = {(q, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW) for q in a.task_queue}
            return r if wanted <= names else None

        await poll("the version to register", a.timeout, registered)
        log("version registered")

        # 2. Make it current (while the worker still polls: setting a version current needs
        #    pollers unless allow_no_pollers is set).
        await poll(
            "set-current-version",
            a.timeout,
            lambda: svc.set_worker_deployment_current_version(
                SetWorkerDeploymentCurrentVersionRequest(
                    namespace=a.namespace,
                    deployment_name=a.deployment,
                    build_id=a.build_id,
                    identity="deployment_backlog.py",
                )
            ),
        )
        log("version is current; stopping the worker")
    log("worker stopped")
    # 3. The worker is stopped (shutdown above); nothing polls the queue any more.

    # 4. Start the workflows; they are routed to the current version and stay queued.
    run = uuid.uuid4().hex[:8]
    for queue in a.task_queue:
        for i in range(a.workflows):
            await client.start_workflow("Noop", id=f"backlog-{run}-{queue}-{i}", task_queue=queue)
    log(f"started {a.workflows} workflows on each of {', '.join(a.task_queue)}")

    # 5. The backlog shows up on each of the version's workflow queues.
    seen = {}

    async def backlog():
        r = await describe()
        for q in r.version_task_queues:
            if q.name in a.task_queue and q.type == TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW:
                if seen.get(q.name) != q.stats.approximate_backlog_count:
                    log(f"backlog of {q.name} now {q.stats.approximate_backlog_count}")
                seen[q.name] = q.stats.approximate_backlog_count
        return r if all(seen.get(q, 0) >= a.workflows for q in a.task_queue) else None

    r = await poll(f"a backlog of {a.workflows} on each queue", a.timeout, backlog)
    log(f"backlogs {seen} visible")
    info = r.worker_deployment_version_info
    print(
        json.dumps(
            {
                "backlog": seen,
                "task_queues": a.task_queue,
                "version": f"{a.deployment}.{a.build_id}",
                "status": WorkerDeploymentVersionStatus.Name(info.status),
                "queues": [
                    {
                        "name": q.name,
                        "type": TaskQueueType.Name(q.type),
                        "backlog": q.stats.approximate_backlog_count,
                    }
                    for q in r.version_task_queues
                ],
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
