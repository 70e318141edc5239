"""Print /scalers compactly (used by scripts/demo): one line per scaler."""
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
