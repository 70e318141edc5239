#!/usr/bin/env python3
"""What the agent's live heap gained between two moments of a heaptrack recording, by call site.

heaptrack_print shows the peak and what is left at exit, not a time slice; its massif export
came out empty for the agent. This reads the recording itself (zstd, heaptrack 1.4's format:
`a` allocation info, `+`/`-` allocations and frees by info index, `c` timestamps in ms, `t`/`i`/`s`
traces, instruction pointers and strings) and sums, per call stack, the bytes allocated and not
freed between T1 and T2 seconds.

    python3 scripts/heap_slice.py heaptrack.temporal-autoscaler.PID.zst 212 250

Record with a `--no-default-features` build (glibc malloc, which heaptrack hooks; jemalloc is
not seen), see docs/performance.md.
"""
import collections
import re
import subprocess
import sys

SOURCE = re.compile(r"\((\w+)\.rs\)")
GENERIC = ("_R", "alloc", "with_capacity", "poll<", "{async", "{closure", "grow", "finish_grow",
           "reserve", "try_", "new<", "box_new")


def main():
    path, t1, t2 = sys.argv[1], float(sys.argv[2]) * 1000, float(sys.argv[3]) * 1000
    top = int(sys.argv[4]) if len(sys.argv) > 4 else 25
    proc = subprocess.Popen(["zstd", "-dc", path], stdout=subprocess.PIPE, bufsize=1 << 20)
    strings, ips, traces, infos, live = [""], [(0, 0)], [(0, 0)], [], []
    before, now = None, 0
    for raw in proc.stdout:
        c = raw[0]
        if c == 43:  # '+'
            live[int(raw[2:], 16)] += 1
        elif c == 45:  # '-'
            live[int(raw[2:], 16)] -= 1
        elif c == 97:  # 'a'
            size, trace = raw[2:].split()
            infos.append((int(size, 16), int(trace, 16)))
            live.append(0)
        elif c == 99:  # 'c'
            now = int(raw[2:], 16)
            if before is None and now >= t1:
                before = list(live)
            if now >= t2:
                break
        elif c == 116:  # 't'
            ip, parent = raw[2:].split()
            traces.append((int(ip, 16), int(parent, 16)))
        elif c == 105:  # 'i'
            parts = raw[2:].split()
            ips.append((int(parts[2], 16) if len(parts) > 2 else 0,
                        int(parts[3], 16) if len(parts) > 3 else 0))
        elif c == 115:  # 's'
            strings.append(raw[2:].decode(errors="replace").rstrip("\n").partition(" ")[2])
    proc.kill()
    before = before or [0] * len(live)
    gained = collections.Counter()
    for i, (size, trace) in enumerate(infos):
        d = live[i] - (before[i] if i < len(before) else 0)
        if d:
            gained[trace] += d * size

    def frames(trace):
        while trace:
            ip, trace = traces[trace]
            fn, fl = ips[ip] if ip < len(ips) else (0, 0)
            yield f"{strings[fn][:60]} ({strings[fl].rsplit('/', 1)[-1]})"

    by_site = collections.Counter()
    for trace, b in gained.items():
        ours = [f for f in frames(trace) if SOURCE.search(f) and not f.startswith(GENERIC)]
        by_site[" < ".join(ours[:4]) or "(outside the agent's code)"] += b
    print(f"{now / 1000:.1f} s read; live heap gained {sum(gained.values()) / 2**20:.1f} MB "
          f"between {t1 / 1000:.0f} and {t2 / 1000:.0f} s")
    for site, b in by_site.most_common(top):
        print(f"{b / 2**20:8.2f} MB  {site}")


if __name__ == "__main__":
    main()
