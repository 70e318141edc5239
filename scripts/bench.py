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
            (targetSlotUtilization), and real SDK workers (heartbeat every --heartbeat s) on
            the first 20 queues, 10 of them also a Worker Deployment version's, which the
            second scaler of those queues selects: every scaler must count exactly its own
            workers. RPC limit: backlog reads + min(worker queries, namespace listing pages).
  short     the capacity scenario at --short-form-sizes through a front end that strips
            workers_info from ListWorkers (examples/strip_workers_info.rs): slots come from
            DescribeWorker, reported per interval against workers × interval ÷ heartbeat.
  reload    in the N-scaler run: one file edited -> the new spec in force (its recommendation
            changes), and the other N-1 scalers untouched (no restart logged, same state).
  reaction  backlog visible in Temporal (a direct DescribeTaskQueue sees it) -> the agent's
            decision (in /scalers), over --reaction-samples queues, polling every 2 s.
  start     process start -> first decision of one scaler, Temporal reachable; its RSS is
            the base of the bytes per scaler.
Each scale scenario also reports the slowest scaler's time since its last decision
(`lastDecisionTime` in /scalers), in intervals.

Included from the Rust benches (--decide-bench): one decide() (benches/decide.rs), and the
Kubernetes requests of an idle-first scale-down (benches/scale_down.rs).
"""
import argparse
import asyncio
import datetime
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
HERE = os.path.dirname(os.path.abspath(__file__))
SLOT_WORKER = os.path.join(HERE, "..", "tests", "capacity", "slot_worker.py")
BENCH_DEPLOYMENT = "bench-dep"
# The capacity scenario's real workers: unversioned ones on the first WORKER_QUEUES queues, and
# a Worker Deployment version's on the first VERSIONED_QUEUES of them, whose second scaler
# selects that version (fewer where Q is small).
WORKER_QUEUES = 20
VERSIONED_QUEUES = 10


def worker_layout(q: int):
    """(queues with workers, of which versioned) for Q queues."""
    wq = min(WORKER_QUEUES, q // 2)
    return wq, min(VERSIONED_QUEUES, wq // 2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(addr: str, path: str, timeout: float = 30):
    with urllib.request.urlopen(f"http://{addr}{path}", timeout=timeout) as r:
        return r.read().decode()


def scaler_doc(name: str, endpoint: str, queue: str, interval: int, target: int = 5,
               capacity: bool = False, version: str = "") -> str:
    extra = '        targetSlotUtilization: "0.8"\n' if capacity else ""
    if version:
        extra += (f"        workerDeploymentName: {BENCH_DEPLOYMENT}\n"
                  f"        workerDeploymentBuildId: {version}\n")
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

    def __init__(self, args, log_path, env=None, stdout=subprocess.DEVNULL):
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.started = time.monotonic()
        self.p = subprocess.Popen(args, stdout=stdout, stderr=self.log, env=env, text=True)

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
    def __init__(self, binary, config_dir, workdir, name, log_level="warn", rps=None):
        self.addr = f"127.0.0.1:{free_port()}"
        env = dict(os.environ, RUST_LOG=log_level)
        extra = ["--temporal-rps", str(rps)] if rps else []
        super().__init__(
            [binary, "run", "--dry-run", "--no-crds", "--config-dir", config_dir,
             "--http-addr", self.addr, "--log-format", "json", *extra],
            os.path.join(workdir, f"{name}.log"), env)

    def scalers(self, query: str = ""):
        return json.loads(http_get(self.addr, "/scalers" + query))

    def rpc_total(self, method: str = "") -> float:
        total = 0.0
        want = f'temporal_rpc_requests_total{{method="{method}"' if method else "temporal_rpc_requests_total{"
        for line in http_get(self.addr, "/metrics").splitlines():
            if line.startswith(want):
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


def parse_time(t: str) -> float:
    """An RFC 3339 time (nanoseconds, `Z`) as a Unix time."""
    m = re.match(r"(.*T\d\d:\d\d:\d\d)(\.\d+)?Z$", t)
    base = datetime.datetime.fromisoformat(m.group(1)).replace(tzinfo=datetime.timezone.utc)
    return base.timestamp() + float(m.group(2) or 0)


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def start_workers(args, endpoint, workdir, layout):
    """The capacity scenario's real SDK workers, heartbeating every --heartbeat s: returns the
    processes once each has said "ready" (its workers poll)."""
    wq, vq = layout
    queues = [f"q-{j}" for j in range(wq)]
    specs = [("unversioned", queues, []),
             ("versioned", queues[:vq], ["--deployment", BENCH_DEPLOYMENT, "--build-id", "v1"])]
    procs = []
    for name, qs, extra in specs:
        p = Proc([sys.executable, SLOT_WORKER, "worker", "--address", endpoint,
                  "--task-queue", ",".join(qs), "--heartbeat", str(args.heartbeat), *extra],
                 os.path.join(workdir, f"workers-{name}.log"), stdout=subprocess.PIPE)
        procs.append(p)
    for p in procs:
        line = p.p.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"a bench worker did not start: {open(p.log_path).read()}")
    return procs


def expected_workers(i: int, q: int, layout) -> int:
    """Workers the capacity signal of scaler s-i (queue q-(i % q)) should count."""
    wq, vq = layout
    j = i % q
    if i // q == 1 and j < vq:
        return 1  # the version's own worker
    if j < vq:
        return 2  # unversioned and versioned, on one queue
    return 1 if j < wq else 0


def start_strip_front_end(args, endpoint, workdir):
    """The gRPC front end that strips workers_info from ListWorkers (examples/strip_workers_info.rs)."""
    p = Proc([args.strip_binary, endpoint.rsplit(":", 1)[1]], os.path.join(workdir, "strip.log"),
             stdout=subprocess.PIPE)
    port = int(p.p.stdout.readline().strip())
    return p, f"127.0.0.1:{port}"


async def scale_and_reload(args, client, endpoint, workdir, n, rows, capacity=False, short_form=False):
    q = max(1, n // 5)
    kind = "scale+capacity" + (" (no workers_info)" if short_form else "") if capacity else "scale"
    label = f"{kind} N={n}, Q={q}"
    tag = f"{n}{'-capacity' if capacity else ''}{'-short' if short_form else ''}"
    d = os.path.join(workdir, f"scalers-{tag}")
    os.makedirs(d)
    front = None
    workers = []
    target = endpoint
    if short_form:
        front, target = start_strip_front_end(args, endpoint, workdir)
    layout = worker_layout(q) if capacity and n >= 2 * q else (0, 0)
    versioned = layout[1]
    for i in range(n):
        version = "v1" if versioned and i // q == 1 and i % q < versioned else ""
        with open(os.path.join(d, f"s-{i:06}.yaml"), "w") as f:
            f.write(scaler_doc(f"s-{i:06}", target, f"q-{i % q}", args.interval, capacity=capacity,
                               version=version))
    if versioned:
        workers = start_workers(args, endpoint, workdir, layout)
    # A backlog on q-0 so the reload's effect shows (target 5 -> 1 multiplies its recommendation).
    await start_workflows(client, "q-0", 10)
    agent = Agent(args.binary, d, workdir, f"agent-{tag}", log_level="info", rps=args.rps)
    try:
        t0 = agent.started

        def all_decided():
            lst = agent.scalers()
            return len(lst) == n and all(v.get("desiredReplicas") is not None for v in lst)

        # The first round is paced by the RPC rate limit.
        # (A /scalers listing of 100,000 scalers is about 100 MB: asked every few seconds there.)
        wait_for(f"{n} first decisions", all_decided, timeout=120 + 10 * q / args.rps,
                 step=max(0.5, n / 20000))
        first_all = time.monotonic() - t0
        if versioned:
            # Every heartbeat listed (the workers' first heartbeats come within a period).
            def counted():
                lst = agent.scalers()
                got = {v["name"]: ((v["triggers"][0].get("capacity") or {}).get("workers")) for v in lst}
                return all(got[f"s-{i:06}"] == expected_workers(i, q, layout) for i in range(n))
            wait_for("every scaler's workers counted", counted, timeout=3 * args.heartbeat + 60, step=1)
        # One interval to settle, then measure over --ticks intervals.
        time.sleep(args.interval)
        window = args.ticks * args.interval
        cpu0, rpc0, w0 = agent.cpu_seconds(), agent.rpc_total(), time.monotonic()
        dw0 = agent.rpc_total("DescribeWorker")
        rss = []
        while time.monotonic() - w0 < window:
            rss.append(agent.status("VmRSS"))
            time.sleep(1)
        cpu1, rpc1, w1 = agent.cpu_seconds(), agent.rpc_total(), time.monotonic()
        dw1 = agent.rpc_total("DescribeWorker")
        # The metrics scrapes themselves cost a little CPU; the /scalers listing is not in it.
        cpu = (cpu1 - cpu0) / (w1 - w0)
        ticks = (w1 - w0) / args.interval
        rpcs_per_tick = (rpc1 - rpc0) / ticks
        # Starvation: how long ago each scaler last decided, in intervals.
        asked = time.time()
        lst = agent.scalers()
        lag = max(asked - parse_time(v["lastDecisionTime"]) for v in lst) / args.interval
        pairs = q + versioned  # one queue type per trigger; a versioned read per versioned scaler
        # With the capacity signal, per namespace the cheaper of one ListWorkers per distinct
        # worker query (one per queue, one per versioned scaler) and the pages of one
        # namespace-wide listing (1,000 workers a page: one page here).
        pages = 1
        limit = pairs + (min(q + versioned, pages) if capacity else 0)
        limit_name = ("backlog reads + min(worker queries, namespace listing pages)"
                      if capacity else "distinct (queue, type)")
        describes = sum(layout) * args.interval / args.heartbeat if short_form else 0
        if short_form:
            # Plus one DescribeWorker per worker per heartbeat period.
            limit_name += " + workers × interval ÷ heartbeat"
            limit += describes
        steady = statistics.median(rss)
        rows.append((label, "RSS peak / steady",
                     f"{agent.status('VmHWM') / 1024:.1f} MiB / {steady / 1024:.1f} MiB",
                     ("≤ 64 MiB at N=10,000" if n == 10000 else "≤ 256 MiB at N=100,000" if n == 100000 else "")))
        if args.baseline_kib:
            rows.append((label, "bytes per scaler (steady RSS − a 1-scaler agent's, ÷ N)",
                         f"{(steady - args.baseline_kib) * 1024 / n:.0f} B", ""))
        rows.append((label, "CPU mean over the window",
                     f"{cpu:.3f} core ({window} s, {args.ticks} intervals)",
                     "≤ 0.1 core at N=10,000" if n == 10000 else "≤ 0.5 core at N=100,000" if n == 100000 else ""))
        rows.append((label, f"Temporal RPCs per interval / {limit_name}",
                     f"{rpcs_per_tick:.0f} / {limit:.0f} = {rpcs_per_tick / limit:.2f}", "≤ 1.01"))
        if short_form:
            rows.append((label, "DescribeWorker per interval / (workers × interval ÷ heartbeat period)",
                         f"{(dw1 - dw0) / ticks:.1f} / {describes:.1f} ({sum(layout)} workers, heartbeat {args.heartbeat} s)", "≤ 1"))
        if versioned:
            rows.append((label, "real workers (heartbeat every {} s)".format(args.heartbeat),
                         f"{sum(layout)} on {layout[0]} queues ({layout[1]} of a Worker Deployment version); "
                         f"every scaler counted its own: {n} of {n}", ""))
        rows.append((label, "slowest scaler: time since its last decision",
                     f"{lag:.2f} intervals (of {args.interval} s)", "≤ 2"))
        rows.append((label, "start → all N decided", f"{first_all:.2f} s", "≤ 1 interval" if n <= 10000 else ""))
        if capacity:
            return

        # Reload: edit s-000000 (target 5 -> 1): its recommendation becomes its backlog (max 20).
        before = {v["name"]: (v["desiredReplicas"], v["lastScaleTime"]) for v in agent.scalers()}
        def backlog_of_q0():
            return agent.scalers("?namespace=bench&name=s-000000")[0]["triggers"][0]["backlog"]

        # A saturated server refuses some reads: s-000000's last one may have failed (its
        # backlog then unknown until its next read, within an interval).
        wait_for("s-000000's backlog read", lambda: backlog_of_q0() is not None,
                 timeout=2 * args.interval + 30, step=1)
        expected = min(20, backlog_of_q0())
        restarts_before = agent.log_text().count("spec changed; applying")
        edit_at = time.monotonic()
        with open(os.path.join(d, "s-000000.yaml"), "w") as f:
            f.write(scaler_doc("s-000000", endpoint, "q-0", args.interval, target=1))

        def in_force():
            v = agent.scalers("?namespace=bench&name=s-000000")
            return v and v[0]["triggers"][0]["recommendedReplicas"] == expected

        try:
            wait_for("the edited spec in force", in_force, timeout=60, step=0.01)
            took = f"{(time.monotonic() - edit_at) * 1000:.0f} ms"
        except TimeoutError:
            # Reported, not raised: the other rows of a long run stand. What the scaler shows
            # says why (a failed read, or no decision since the edit).
            took = "not within 60 s"
            v = agent.scalers("?namespace=bench&name=s-000000")
            print(f"reload N={n}: not in force after 60 s; s-000000 now: "
                  f"{json.dumps(v[0] if v else None)}", file=sys.stderr)
            print("; ".join(l for l in agent.log_text().splitlines() if "s-000000" in l)[-4000:],
                  file=sys.stderr)
        time.sleep(1)
        after = {v["name"]: (v["desiredReplicas"], v["lastScaleTime"]) for v in agent.scalers()}
        changed = [k for k in before if k != "s-000000" and before[k] != after.get(k)]
        restarts = agent.log_text().count("spec changed; applying") - restarts_before
        rows.append((f"reload N={n}", "one file edited → new spec in force",
                     f"{took}; spec restarts: {restarts}; other scalers changed: {len(changed)} of {n - 1}",
                     "1 restart, 0 changed"))
    finally:
        agent.stop()
        for w in workers:
            w.stop()
        if front:
            front.stop()


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
            if i == args.start_samples - 1:
                # A 1-scaler agent's resident size, the base of bytes per scaler.
                time.sleep(3)
                args.baseline_kib = agent.status("VmRSS")
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
    ap.add_argument("--short-form-sizes", default="2000",
                    help="sizes of the capacity scenario through a front end that strips workers_info "
                         "from ListWorkers (slots by DescribeWorker; needs --strip-binary)")
    ap.add_argument("--strip-binary", help="examples/strip_workers_info, built")
    ap.add_argument("--heartbeat", type=int, default=15,
                    help="the capacity scenario's workers' heartbeat period in seconds")
    ap.add_argument("--rps", type=int, default=300, help="the agent's --temporal-rps")
    ap.add_argument("--interval", type=int, default=15)
    ap.add_argument("--ticks", type=int, default=4)
    ap.add_argument("--reaction-samples", type=int, default=20)
    ap.add_argument("--start-samples", type=int, default=5)
    ap.add_argument("--decide-bench",
                    help="output of `cargo bench --bench decide` and `--bench scale_down`, to include")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny sizes and one interval: checks that every figure is produced")
    args = ap.parse_args()
    args.baseline_kib = None
    if args.smoke:
        args.sizes, args.interval, args.ticks = "50", 2, 1
        args.capacity_sizes = "50"
        args.short_form_sizes = "50" if args.strip_binary else ""
        args.heartbeat = 2
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
        for n in [int(x) for x in args.short_form_sizes.split(",") if x and args.strip_binary]:
            await scale_and_reload(args, client, endpoint, workdir, n, rows, capacity=True, short_form=True)
        if args.reaction_samples:
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
