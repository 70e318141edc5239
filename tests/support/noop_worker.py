"""A real Temporal worker (Python SDK) that completes `Noop` workflows, used to drain a queue."""
import argparse
import asyncio

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker


@workflow.defn(name="Noop")
class Noop:
    @workflow.run
    async def run(self) -> None:
        return None


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--address", required=True)
    p.add_argument("--task-queue", required=True)
    a = p.parse_args()
    client = await Client.connect(a.address)
    async with Worker(client, task_queue=a.task_queue, workflows=[Noop]):
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
