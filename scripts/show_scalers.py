"""Print /scalers compactly (used by scripts/demo): one line per scaler, and a line per trigger
whose worker-capacity signal is on, and per Schedule on a trigger's queue (Schedules signal)."""
import json
import sys
import urllib.request

url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080/scalers"
for s in json.load(urllib.request.urlopen(url)):
    queues = ", ".join(
        "{}={}".format(t["taskQueue"], "ERR" if t["error"] else t["backlog"]) for t in s["triggers"]
    )
    print(
        "  {:<16} backlog[{}]  current={} desired={} active={}{}".format(
            s["name"] or s.get("file"), queues, s["currentReplicas"], s["desiredReplicas"], s["active"],
            "  error=" + s["error"] if s["error"] else "",
        )
    )
    for t in s["triggers"]:
        c = t.get("capacity")
        if not c:
            continue
        if c.get("unavailable"):
            print("  {:<16}   {}".format("", c["unavailable"]))
            continue
        u = c.get("utilization")
        busy = t.get("basis") in ("slotUtilization", "busyWorkers") and not t.get("backlog")
        print("  {:<16}   slots {} used / {} free on {} host(s), utilization {} → {} [{}]{}".format(
            "", c["slotsUsed"], c["slotsAvailable"], c["hosts"],
            "-" if u is None else f"{u:.0%}", t.get("recommendedReplicas"), t.get("basis"),
            "  ← busy: hold (backlog 0, slots in use)" if busy else "",
        ))
    for t in s["triggers"]:
        for sc in t.get("schedules") or []:
            secs = sc.get("nextActionInSeconds")
            pre = t.get("basis") == "scheduled" and not t.get("backlog")
            print("  {:<16}   schedule {} fires in {}, learned {} → {} [{}]{}".format(
                "", sc["id"], "-" if secs is None else f"{secs:.0f} s",
                "-" if sc.get("learnedReplicas") is None else sc["learnedReplicas"],
                t.get("recommendedReplicas"), t.get("basis"),
                "  ← up before the work arrives" if pre else "",
            ))
