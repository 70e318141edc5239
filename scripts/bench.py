#!/usr/bin/env python3
"""Benchmarks of the agent against a real Temporal dev server, agent in dry run (no cluster).

Run through ./scripts/bench (which builds the release binary and installs the tools). Prints a
Markdown table; every figure comes from the run that prints it. Times are reported, never
asserted: `--smoke` (used by a test) only checks that every figure is produced.

Scenarios:
  scale     N scalers (one file each) over Q = N/5 task queues (workflow type), polling every
            --interval s: RSS (peak, steady), mean CPU over --ticks intervals, Temporal RPCs per
            interval from the agent's own metrics, and RPCs / distinct (queue, type) pairs.
  capacity  the same at --capacity-sizes with the worker-capacity signal on every scaler
            (targetSlotUtilization): one ListWorkers per distinct worker query joins the
            DescribeTaskQueue per (queue, type), so the RPC limit is pairs + queries.
  reload    in the N-scaler run: one file edited -> the new spec in force (its recommendation
            changes), and the other N-1 scalers untouched (no restart logged, same state).
  reaction  backlog visible in Temporal (a direct DescribeTaskQueue sees it) -> the agent's
            decision (in /scalers), over --reaction-samples queues, polling every 2 s.
  start     process start -> first decision of one scaler, Temporal reachable.

Included from the Rust benches (--decide-bench): one decide() (benches/decide.rs), and the
Kubernetes requests of an idle-first scale-down (benches/scale_down.rs).
"""
import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(addr: str, path: str, timeout: float = 30):
    with urllib.request.urlopen(f"http://{addr}{path}", timeout=timeout) as r:
        return r.read().decode()


def scaler_doc(name: str, endpoint: str, queue: str, interval: int, target: int = 5,
               capacity: bool = False) -> str:
    extra = '        targetSlotUtilization: "0.8"\n' if capacity else ""
    return f"""apiVersion: scaling.example.com/v1alpha1
kind: TemporalScaler
metadata:
  name: {name}
  namespace: bench
spec:
  scaleTargetRef:
    name: {name}-worker
  pollingInterval: {interval}
  minReplicaCount: 0
  maxReplicaCount: 20
  triggers:
    - type: temporal
      metadata:
        endpoint: "{endpoint}"
        taskQueue: "{queue}"
        queueTypes: workflow
        targetQueueSize: "{target}"
{extra}"""


class Proc:
    """A child process, killed on exit."""

    def __init__(self, args, log_path, env=None):
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.started = time.monotonic()
        self.p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self.log, env=env)

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()

    def status(self, field: str) -> int:
        """A /proc/PID/status field in KiB (VmRSS, VmHWM)."""
        with open(f"/proc/{self.p.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise KeyError(field)

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.p.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Agent(Proc):
    def __init__(self, binary, config_dir, workdir, name, log_level="warn"):
        self.addr = f"127.0.0.1:{free_port()}"
        env = dict(os.environ, RUST_LOG=log_level)
        super().__init__(
            [binary, "run", "--dry-run", "--no-crds", "--config-dir", config_dir,
             "--http-addr", self.addr, "--log-format", "json"],
            os.path.join(workdir, f"{name}.log"), env)

    def scalers(self, query: str = ""):
        return json.loads(http_get(self.addr, "/scalers" + query))

    def rpc_total(self) -> float:
        total = 0.0
        for line in http_get(self.addr, "/metrics").splitlines():
            if line.startswith("temporal_rpc_requests_total{"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def log_text(self) -> str:
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()


def wait_for(what, check, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while True:
        try:
            r = check()
            if r:
                return r
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


async def start_workflows(client: Client, queue: str, n: int):
    for _ in range(n):
        await client.start_workflow("Noop", id=f"bench-{queue}-{uuid.uuid4()}", task_queue=queue)


async def visible_backlog(client: Client, queue: str) -> int:
    r = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
        namespace="default", task_queue=TaskQueue(name=queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, report_stats=True))
    return r.stats.approximate_backlog_count


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


async def scale_and_reload(args, client, endpoint, workdir, n, rows, capacity=False):
    q = max(1, n // 5)
    label = f"{'scale+capacity' if capacity else 'scale'} N={n}, Q={q}"
    d = os.path.join(workdir, f"scalers-{n}{'-capacity' if capacity else ''}")
    os.makedirs(d)
    for i in range(n):
        with open(os.path.join(d, f"s-{i:05}.yaml"), "w") as f:
            f.write(scaler_doc(f"s-{i:05}", endpoint, f"q-{i % q}", args.interval, capacity=capacity))
    # A backlog on q-0 so the reload's effect shows (target 5 -> 1 multiplies its recommendation).
    await start_workflows(client, "q-0", 10)
    agent = Agent(args.binary, d, workdir, f"agent-{n}{'-capacity' if capacity else ''}",
                  log_level="info")
    try:
        t0 = agent.started

        def all_decided():
            lst = agent.scalers()
            return len(lst) == n and all(v.get("desiredReplicas") is not None for v in lst)

        wait_for(f"{n} first decisions", all_decided, timeout=120, step=0.5)
        first_all = time.monotonic() - t0
        # One interval to settle, then measure over --ticks intervals.
        time.sleep(args.interval)
        window = args.ticks * args.interval
        cpu0, rpc0, w0 = agent.cpu_seconds(), agent.rpc_total(), time.monotonic()
        rss = []
        while time.monotonic() - w0 < window:
            rss.append(agent.status("VmRSS"))
            time.sleep(1)
        cpu1, rpc1, w1 = agent.cpu_seconds(), agent.rpc_total(), time.monotonic()
        # The metrics scrapes themselves cost a little CPU; the /scalers listing is not in it.
        cpu = (cpu1 - cpu0) / (w1 - w0)
        rpcs_per_tick = (rpc1 - rpc0) / ((w1 - w0) / args.interval)
        pairs = q  # one queue type per trigger
        # With the capacity signal, per namespace the cheaper of one ListWorkers per distinct
        # worker query (one per queue here) and the pages of one namespace-wide listing (1,000
        # workers a page; this scenario has no heartbeating workers: one page).
        pages = 1
        limit = pairs + (min(q, pages) if capacity else 0)
        limit_name = ("(queue, type) + min(worker queries, namespace listing pages)"
                      if capacity else "(queue, type)")
        rows.append((label, "RSS peak / steady",
                     f"{agent.status('VmHWM') / 1024:.1f} MiB / {statistics.median(rss) / 1024:.1f} MiB",
                     "≤ 64 MiB at N=10,000" if n >= 10000 else ""))
        rows.append((label, "CPU mean over the window",
                     f"{cpu:.3f} core ({window} s, {args.ticks} intervals)",
                     "≤ 0.1 core at N=10,000" if n >= 10000 else ""))
        rows.append((label, f"Temporal RPCs per interval / distinct {limit_name}",
                     f"{rpcs_per_tick:.0f} / {limit} = {rpcs_per_tick / limit:.2f}", "1.00"))
        rows.append((label, "start → all N decided", f"{first_all:.2f} s", ""))
        if capacity:
            return

        # Reload: edit s-00000 (target 5 -> 1): its recommendation becomes its backlog (max 20).
        before = {v["name"]: (v["desiredReplicas"], v["lastScaleTime"]) for v in agent.scalers()}
        backlog = agent.scalers("?namespace=bench&name=s-00000")[0]["triggers"][0]["backlog"]
        expected = min(20, backlog)
        restarts_before = agent.log_text().count("spec changed; applying")
        edit_at = time.monotonic()
        with open(os.path.join(d, "s-00000.yaml"), "w") as f:
            f.write(scaler_doc("s-00000", endpoint, "q-0", args.interval, target=1))

        def in_force():
            v = agent.scalers("?namespace=bench&name=s-00000")
            return v and v[0]["triggers"][0]["recommendedReplicas"] == expected

        wait_for("the edited spec in force", in_force, timeout=60, step=0.01)
        reload_s = time.monotonic() - edit_at
        time.sleep(1)
        after = {v["name"]: (v["desiredReplicas"], v["lastScaleTime"]) for v in agent.scalers()}
        changed = [k for k in before if k != "s-00000" and before[k] != after.get(k)]
        restarts = agent.log_text().count("spec changed; applying") - restarts_before
        rows.append((f"reload N={n}", "one file edited → new spec in force",
                     f"{reload_s * 1000:.0f} ms; spec restarts: {restarts}; other scalers changed: {len(changed)} of {n - 1}",
                     "1 restart, 0 changed"))
    finally:
        agent.stop()


async def reaction(args, client, endpoint, workdir, rows):
    interval = 2
    k = args.reaction_samples
    d = os.path.join(workdir, "scalers-reaction")
    os.makedirs(d)
    for i in range(k):
        with open(os.path.join(d, f"r-{i}.yaml"), "w") as f:
            f.write(scaler_doc(f"r-{i}", endpoint, f"react-{i}", interval))
    agent = Agent(args.binary, d, workdir, "agent-reaction")
    samples = []
    try:
        wait_for("first decisions", lambda: all(
            v.get("desiredReplicas") is not None for v in agent.scalers()) and len(agent.scalers()) == k,
            timeout=60)
        for i in range(k):
            # Start at a random phase of the agent's polling interval.
            await asyncio.sleep((i * 0.37) % interval)
            started = time.monotonic()
            await start_workflows(client, f"react-{i}", 6)
            visible = None
            decided = None
            deadline = time.monotonic() + 30
            probe_max = 0.0
            while decided is None and time.monotonic() < deadline:
                now = time.monotonic()
                if visible is None:
                    seen = await visible_backlog(client, f"react-{i}") > 0
                    probe_max = max(probe_max, time.monotonic() - now)
                    if seen:
                        visible = now
                v = agent.scalers(f"?namespace=bench&name=r-{i}")
                if v and (v[0]["desiredReplicas"] or 0) > 0:
                    decided = time.monotonic()
                await asyncio.sleep(0.005)
            if decided is None:
                raise TimeoutError(f"no decision for react-{i}")
            # If the agent saw it before the probe did, the reaction is under the probe's step.
            samples.append(max(0.0, decided - (visible or decided)))
            # Details on stderr: a slow probe RPC means a slow server, not a slow agent.
            print(f"reaction react-{i}: {samples[-1] * 1000:.0f} ms; visible {(visible or decided) - started:.3f} s "
                  f"after the start; slowest probe DescribeTaskQueue {probe_max * 1000:.0f} ms", file=sys.stderr)
    finally:
        agent.stop()
    rows.append((f"reaction ({k} queues, pollingInterval {interval} s)",
                 "backlog visible → decision, p50 / p99",
                 f"{pct(samples, 50) * 1000:.0f} ms / {pct(samples, 99) * 1000:.0f} ms "
                 f"(interval + {(pct(samples, 99) - interval) * 1000:+.0f} ms at p99)",
                 "p99 ≤ interval + 250 ms"))


async def start_time(args, client, endpoint, workdir, rows):
    d = os.path.join(workdir, "scalers-start")
    os.makedirs(d)
    with open(os.path.join(d, "one.yaml"), "w") as f:
        f.write(scaler_doc("one", endpoint, "start-q", 15))
    times = []
    for i in range(args.start_samples):
        agent = Agent(args.binary, d, workdir, f"agent-start-{i}")
        try:
            def decided():
                v = agent.scalers()
                return v and v[0].get("desiredReplicas") is not None
            wait_for("the first decision", decided, timeout=30, step=0.002)
            times.append(time.monotonic() - agent.started)
        finally:
            agent.stop()
    rows.append(("start (1 scaler)", f"process start → first decision, median / max of {len(times)}",
                 f"{statistics.median(times) * 1000:.0f} ms / {max(times) * 1000:.0f} ms", "≤ 300 ms"))


def binary_size(args, rows):
    size = os.path.getsize(args.binary)
    with tempfile.NamedTemporaryFile() as t:
        shutil.copyfile(args.binary, t.name)
        subprocess.run(["strip", t.name], check=True)
        stripped = os.path.getsize(t.name)
    rows.append(("binary", f"size of {os.path.basename(os.path.dirname(args.binary))} build, as built / stripped",
                 f"{size / 1e6:.1f} MB / {stripped / 1e6:.1f} MB", "≤ 25 MB stripped"))


async def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", required=True)
    ap.add_argument("--temporal", required=True, help="the temporal CLI")
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--capacity-sizes", default="10000",
                    help="sizes of the scale scenario with the capacity signal on ('' for none)")
    ap.add_argument("--interval", type=int, default=15)
    ap.add_argument("--ticks", type=int, default=4)
    ap.add_argument("--reaction-samples", type=int, default=20)
    ap.add_argument("--start-samples", type=int, default=5)
    ap.add_argument("--decide-bench",
                    help="output of `cargo bench --bench decide` and `--bench scale_down`, to include")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny sizes and one interval: checks that every figure is produced")
    args = ap.parse_args()
    if args.smoke:
        args.sizes, args.interval, args.ticks = "50", 2, 1
        args.capacity_sizes = "50"
        args.reaction_samples, args.start_samples = 3, 2
    workdir = tempfile.mkdtemp(prefix="temporal-autoscaler-bench-")
    port = free_port()
    server = Proc([args.temporal, "server", "start-dev", "--ip", "127.0.0.1", "--headless",
                   "--port", str(port), "--http-port", str(free_port()),
                   "--metrics-port", str(free_port()), "--log-level", "error",
                   # Describe results are cached 5 s by default; the bench measures the agent.
                   "--dynamic-config-value", 'matching.TaskQueueInfoByBuildIdTTL="1ms"'],
                  os.path.join(workdir, "temporal.log"))
    endpoint = f"127.0.0.1:{port}"
    rows = []
    try:
        client = None
        deadline = time.monotonic() + 60
        while client is None:
            try:
                client = await Client.connect(endpoint)
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        await start_time(args, client, endpoint, workdir, rows)
        for n in [int(x) for x in args.sizes.split(",") if x]:
            await scale_and_reload(args, client, endpoint, workdir, n, rows)
        for n in [int(x) for x in args.capacity_sizes.split(",") if x]:
            await scale_and_reload(args, client, endpoint, workdir, n, rows, capacity=True)
        await reaction(args, client, endpoint, workdir, rows)
        binary_size(args, rows)
        if args.decide_bench:
            for line in open(args.decide_bench):
                m = re.match(r"decide: (.*)", line.strip())
                if m:
                    rows.append(("decision core", "one decide() with a full HPA behavior", m.group(1), ""))
                # benches/scale_down.rs: "scale-down <case>: <pods> pods (<busy> busy) → <to>: <writes> pod writes, <requests> requests (...), <ms> ms"
                m = re.match(r"scale-down (\w+): (.*?): (\d+) pod writes, (\d+) requests .*, (.*) ms", line.strip())
                if m:
                    case, what, writes, requests, ms = m.groups()
                    rows.append(("idle-first scale-down", f"{case}: {what}",
                                 f"{writes} pod writes, {requests} requests", f"{ms} ms"))
    finally:
        server.stop()
        # The table, also of the scenarios that ran before a failure.
        print_table(args, rows)
    shutil.rmtree(workdir, ignore_errors=True)


def print_table(args, rows):
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"Machine: {os.cpu_count()} cores ({cpu}), {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB; "
          f"agent {args.binary}; Temporal dev server on loopback.\n")
    print("| scenario | measure | result | target |")
    print("|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    asyncio.run(main())
