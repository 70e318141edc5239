"""Real Temporal workers (Python SDK) for the capacity-signal tests and the demo.

  worker  a worker (one per queue of a comma-separated `--task-queue`) that heartbeats every
          `--heartbeat` s (the SDK's default is 60 s), with
          `--activity-slots` activity slots; its `Block` activities hold their slot until
          `--release-file` exists. Optionally a Worker Deployment version (`--deployment`,
          `--build-id`), made current with `--make-current`. Prints "ready" once polling.
  start   start `--workflows` workflows: `Hold` (one `Block` activity each) or `Quick`.
  stream  start one `Quick` workflow every 1/`--per-second` s until killed: work that is
          dispatched as it arrives and never builds a backlog.
"""
import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.runtime import Runtime, TelemetryConfig
from temporalio.worker import Worker


@activity.defn(name="Block")
async def block(release_file: str) -> None:
    # Holds its slot until the test (or the demo) creates the release file.
    while not os.path.exists(release_file):
        await asyncio.sleep(0.1)


@workflow.defn(name="Hold")
class Hold:
    @workflow.run
    async def run(self, release_file: str) -> None:
        await workflow.execute_activity(
            block, release_file, start_to_close_timeout=timedelta(hours=1)
        )


@workflow.defn(name="Quick")
class Quick:
    @workflow.run
    async def run(self) -> None:
        return None


async def connect(a, heartbeat: float = 0.0) -> Client:
    """A client; with `heartbeat`, on a runtime whose workers heartbeat that often. Clients that
    only start workflows use the default runtime: a short-lived process that made its own
    runtime was seen to crash (SIGSEGV) at interpreter exit."""
    if not heartbeat:
        return await Client.connect(a.address, namespace=a.namespace)
    runtime = Runtime(
        telemetry=TelemetryConfig(), worker_heartbeat_interval=timedelta(seconds=heartbeat)
    )
    return await Client.connect(a.address, namespace=a.namespace, runtime=runtime)


async def make_current(client: Client, a) -> None:
    """Wait for the version to register (its queue listed), then make it current."""
    from temporalio.api.deployment.v1 import WorkerDeploymentVersion as ProtoVersion
    from temporalio.api.workflowservice.v1 import (
        DescribeWorkerDeploymentVersionRequest,
        SetWorkerDeploymentCurrentVersionRequest,
    )
    from temporalio.service import RPCError

    svc = client.workflow_service
    deadline = time.monotonic() + 30
    while True:
        try:
            r = await svc.describe_worker_deployment_version(
                DescribeWorkerDeploymentVersionRequest(
                    namespace=a.namespace,
                    deployment_version=ProtoVersion(
                        deployment_name=a.deployment, build_id=a.build_id
                    ),
                )
            )
            if any(q.name == a.task_queue for q in r.version_task_queues):
                await svc.set_worker_deployment_current_version(
                    SetWorkerDeploymentCurrentVersionRequest(
                        namespace=a.namespace,
                        deployment_name=a.deployment,
                        build_id=a.build_id,
                        identity="slot_worker.py",
                    )
                )
                return
        except RPCError as e:
            if time.monotonic() > deadline:
                raise TimeoutError(f"version never became current: {e.message}") from e
        if time.monotonic() > deadline:
            raise TimeoutError("version never registered")
        await asyncio.sleep(0.25)


async def run_worker(a) -> None:
    client = await connect(a, a.heartbeat)
    kwargs = {}
    if a.deployment:
        from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
        from temporalio.worker import WorkerDeploymentConfig

        kwargs["deployment_config"] = WorkerDeploymentConfig(
            version=WorkerDeploymentVersion(deployment_name=a.deployment, build_id=a.build_id),
            use_worker_versioning=True,
            default_versioning_behavior=VersioningBehavior.PINNED,
        )
    # A comma-separated list: one worker per queue in this process (the benchmark's many
    # workers), each with its own instance key and heartbeats.
    async with contextlib.AsyncExitStack() as workers:
        for queue in a.task_queue.split(","):
            await workers.enter_async_context(Worker(
                client,
                task_queue=queue,
                workflows=[Hold, Quick],
                activities=[block],
                max_concurrent_activities=a.activity_slots,
                **kwargs,
            ))
        if a.deployment and a.make_current:
            await make_current(client, a)
        print("ready", flush=True)
        # SIGTERM (a pod's stop, the demo's) shuts the worker down as an SDK worker does: it
        # stops polling and tells the server, which then reports it as no longer running.
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()


async def start(a) -> None:
    client = await connect(a)
    run = uuid.uuid4().hex[:8]
    for i in range(a.workflows):
        if a.kind == "hold":
            await client.start_workflow(
                Hold.run, a.release_file, id=f"hold-{run}-{i}", task_queue=a.task_queue
            )
        else:
            await client.start_workflow(Quick.run, id=f"quick-{run}-{i}", task_queue=a.task_queue)


async def stream(a) -> None:
    client = await connect(a)
    run = uuid.uuid4().hex[:8]
    i = 0
    print("streaming", flush=True)
    while True:
        await client.start_workflow(Quick.run, id=f"stream-{run}-{i}", task_queue=a.task_queue)
        i += 1
        await asyncio.sleep(1.0 / a.per_second)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["worker", "start", "stream"])
    p.add_argument("--address", required=True)
    p.add_argument("--namespace", default="default")
    p.add_argument("--task-queue", required=True)
    p.add_argument("--activity-slots", type=int, default=10)
    p.add_argument("--release-file", default="")
    p.add_argument("--heartbeat", type=float, default=1.0)
    p.add_argument("--deployment", default="")
    p.add_argument("--build-id", default="")
    p.add_argument("--make-current", action="store_true")
    p.add_argument("--workflows", type=int, default=1)
    p.add_argument("--kind", choices=["hold", "quick"], default="hold")
    p.add_argument("--per-second", type=float, default=4.0)
    a = p.parse_args()
    try:
        asyncio.run({"worker": run_worker, "start": start, "stream": stream}[a.mode](a))
    except KeyboardInterrupt:
        pass
    # The work is done: leave without the interpreter's teardown, during which the SDK's native
    # runtime was seen to crash (SIGSEGV or abort) about once in fifteen runs.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
