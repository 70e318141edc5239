#!/usr/bin/env python3
"""Real Helm (the Helm v4 Go library bundled by PyPI's helm-sdkpy) for the chart tests.

    helm.py lint CHART            `helm lint`: prints {"errors": N, "messages": [...]}, exit 1 on errors
    helm.py run < REQUEST.json    install, then upgrades, of CHART against a loopback API server

helm-sdkpy has no `helm template` and no dry run, so `run` does what `helm install` and
`helm upgrade` do, for real, against a minimal Kubernetes API server on 127.0.0.1 that serves
discovery and stores objects in memory (release records use HELM_DRIVER=memory). Helm merges
the values, validates them against values.schema.json, renders and orders the manifests, maps
them through discovery and creates them (install) or computes and sends its three-way patches
(upgrade). What comes back is the release manifest and every write Helm made.

REQUEST: {"chart": DIR, "release": NAME, "namespace": NS,
          "existing": [object, ...],   (optional: already in the cluster, e.g. kubectl-applied)
          "steps": [{"action": "install" | "upgrade", "values": {...}}, ...]}
Output:  {"steps": [{"ok": true, "manifest": "...", "notes": "...",
                      "writes": [{"method", "path", "body"}]}
                    | {"ok": false, "error": "..."}]}; steps after a failed one are not run.
"""

import asyncio
import atexit
import copy
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Helm and client-go write caches and config under these; keep them out of $HOME. The Go
# runtime in the shared library reads the environment of the process as it started, so set it
# and start again.
if os.environ.get("HELM_DRIVER") != "memory":
    home = tempfile.mkdtemp(prefix="helm-test-")
    env = dict(os.environ, HOME=home, HELM_DRIVER="memory", HELM_PY_HOME=home)
    for var, sub in [
        ("HELM_CACHE_HOME", "cache"),
        ("HELM_CONFIG_HOME", "config"),
        ("HELM_DATA_HOME", "data"),
        ("KUBECACHEDIR", "kubecache"),
    ]:
        env[var] = os.path.join(home, sub)
    env.pop("KUBECONFIG", None)
    os.execve(sys.executable, [sys.executable, *sys.argv], env)

if os.environ.get("HELM_PY_HOME"):
    atexit.register(shutil.rmtree, os.environ["HELM_PY_HOME"], ignore_errors=True)

import helm_sdkpy  # noqa: E402  (after the environment above)

KUBE_VERSION = {"major": "1", "minor": "33", "gitVersion": "v1.33.0", "platform": "linux/amd64"}

# (group, version) -> [(plural, kind, namespaced, subresources)]
RESOURCES = {
    ("", "v1"): [
        ("configmaps", "ConfigMap", True, []),
        ("events", "Event", True, []),
        ("namespaces", "Namespace", False, []),
        ("secrets", "Secret", True, []),
        ("serviceaccounts", "ServiceAccount", True, []),
        ("services", "Service", True, []),
    ],
    ("apps", "v1"): [
        ("deployments", "Deployment", True, ["scale", "status"]),
        ("replicasets", "ReplicaSet", True, ["scale", "status"]),
        ("statefulsets", "StatefulSet", True, ["scale", "status"]),
    ],
    ("rbac.authorization.k8s.io", "v1"): [
        ("clusterrolebindings", "ClusterRoleBinding", False, []),
        ("clusterroles", "ClusterRole", False, []),
        ("rolebindings", "RoleBinding", True, []),
        ("roles", "Role", True, []),
    ],
    ("coordination.k8s.io", "v1"): [("leases", "Lease", True, [])],
    ("events.k8s.io", "v1"): [("events", "Event", True, [])],
    ("policy", "v1"): [("poddisruptionbudgets", "PodDisruptionBudget", True, ["status"])],
    ("networking.k8s.io", "v1"): [("networkpolicies", "NetworkPolicy", True, [])],
    ("admissionregistration.k8s.io", "v1"): [
        ("validatingadmissionpolicies", "ValidatingAdmissionPolicy", False, ["status"]),
        ("validatingadmissionpolicybindings", "ValidatingAdmissionPolicyBinding", False, []),
    ],
    ("apiextensions.k8s.io", "v1"): [
        ("customresourcedefinitions", "CustomResourceDefinition", False, ["status"])
    ],
    ("monitoring.coreos.com", "v1"): [("servicemonitors", "ServiceMonitor", True, [])],
    ("scaling.example.com", "v1alpha1"): [("temporalscalers", "TemporalScaler", True, ["status"])],
}


def _resource_list(group, version):
    resources = []
    for plural, kind, namespaced, subs in RESOURCES[(group, version)]:
        resources.append(
            {
                "name": plural,
                "singularName": kind.lower(),
                "namespaced": namespaced,
                "kind": kind,
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
            }
        )
        for sub in subs:
            resources.append(
                {
                    "name": f"{plural}/{sub}",
                    "singularName": "",
                    "namespaced": namespaced,
                    "kind": "Scale" if sub == "scale" else kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}


def _groups():
    groups = {}
    for group, version in RESOURCES:
        if group:
            groups.setdefault(group, []).append(version)
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {
                "name": g,
                "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]},
            }
            for g, vs in groups.items()
        ],
    }


_OBJECT_PATH = re.compile(
    r"^/(?:api/(?P<cv>v1)|apis/(?P<g>[^/]+)/(?P<v>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<res>[^/]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>[^/]+))?$"
)


def _merge_patch(target, patch):
    """RFC 7386 JSON merge patch (a strategic merge patch is stored approximately as one)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if k.startswith("$"):
            continue
        if v is None:
            out.pop(k, None)
        else:
            out[k] = _merge_patch(out.get(k), v)
    return out


class FakeApiServer:
    """Discovery plus an in-memory object store; records every write."""

    def __init__(self):
        self.objects = {}
        self.writes = []
        self.lock = threading.Lock()
        self.rv = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self):
                n = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(n) or b"null") if n else None

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_PUT(self):
                self._handle("PUT")

            def do_PATCH(self):
                self._handle("PATCH")

            def do_DELETE(self):
                self._handle("DELETE")

            def _handle(self, method):
                path = self.path.split("?", 1)[0]
                body = self._body() if method in ("POST", "PUT", "PATCH") else None
                code, out = server.handle(method, path, body, self.headers.get("Content-Type", ""))
                self._send(code, out)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def kubeconfig(self):
        return (
            "apiVersion: v1\nkind: Config\n"
            "clusters:\n- name: fake\n  cluster:\n"
            f"    server: http://127.0.0.1:{self.port}\n"
            "users:\n- name: fake\n  user:\n    token: fake\n"
            "contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n"
            "current-context: fake\n"
        )

    @staticmethod
    def _status(code, reason, message):
        return code, {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "reason": reason,
            "message": message,
            "code": code,
        }

    def handle(self, method, path, body, content_type):
        if path == "/version":
            return 200, KUBE_VERSION
        if path == "/api":
            return 200, {"kind": "APIVersions", "versions": ["v1"]}
        if path == "/apis":
            return 200, _groups()
        m = re.match(r"^/(?:api/(v1)|apis/([^/]+)/([^/]+))$", path)
        if m:
            key = ("", "v1") if m.group(1) else (m.group(2), m.group(3))
            if key in RESOURCES:
                return 200, _resource_list(*key)
            return self._status(404, "NotFound", f"no API {path}")
        m = _OBJECT_PATH.match(path)
        if not m:
            return self._status(404, "NotFound", f"no route {path}")
        group = m.group("g") or ""
        version = m.group("cv") or m.group("v")
        ns, res, name, sub = m.group("ns"), m.group("res"), m.group("name"), m.group("sub")
        if (group, version) not in RESOURCES or res not in [r[0] for r in RESOURCES[(group, version)]]:
            return self._status(404, "NotFound", f"the server could not find the requested resource {path}")
        key = (group, version, ns or "", res, name)
        with self.lock:
            if method in ("POST", "PUT", "PATCH", "DELETE"):
                self.writes.append(
                    {"method": method, "path": path, "contentType": content_type, "body": body}
                )
            if method == "GET" and name is None:
                items = [
                    o
                    for (g, v, n, r, _), o in sorted(self.objects.items())
                    if (g, v, r) == (group, version, res) and (not ns or n == ns)
                ]
                return 200, {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": items}
            if method == "POST" and name is None:
                name = (body.get("metadata") or {}).get("name")
                key = (group, version, ns or "", res, name)
                if key in self.objects:
                    return self._status(409, "AlreadyExists", f"{res} {name!r} already exists")
                self.objects[key] = self._stored(body)
                return 201, self.objects[key]
            if key not in self.objects:
                return self._status(404, "NotFound", f'{res} "{name}" not found')
            if method == "GET":
                return 200, self.objects[key]
            if method == "PUT":
                self.objects[key] = self._stored(body)
                return 200, self.objects[key]
            if method == "PATCH":
                self.objects[key] = self._stored(_merge_patch(self.objects[key], body))
                return 200, self.objects[key]
            if method == "DELETE":
                del self.objects[key]
                return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success"}
        return self._status(405, "MethodNotAllowed", f"{method} {path}")

    def preload(self, obj):
        """Store `obj` as if created before Helm runs (not recorded as a write)."""
        kind = obj["kind"]
        group, _, version = obj["apiVersion"].rpartition("/")
        plural, _, namespaced, _ = next(r for r in RESOURCES[(group, version)] if r[1] == kind)
        ns = obj["metadata"].get("namespace", "default") if namespaced else ""
        with self.lock:
            self.objects[(group, version, ns, plural, obj["metadata"]["name"])] = self._stored(obj)

    def _stored(self, obj):
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
        meta.setdefault("generation", 1)
        return obj


async def _run(req):
    api = FakeApiServer()
    for obj in req.get("existing") or []:
        api.preload(obj)
    config = helm_sdkpy.Configuration(namespace=req["namespace"], kubeconfig=api.kubeconfig())
    results = []
    for step in req["steps"]:
        start = len(api.writes)
        try:
            if step["action"] == "install":
                rel = await helm_sdkpy.Install(config).run(
                    req["release"], req["chart"], values=step.get("values") or {}, wait=False, timeout=60
                )
            elif step["action"] == "upgrade":
                rel = await helm_sdkpy.Upgrade(config).run(
                    req["release"], req["chart"], values=step.get("values") or {}, wait=False, timeout=60
                )
            else:
                raise ValueError(f"unknown action {step['action']!r}")
        except helm_sdkpy.HelmError as e:
            results.append({"ok": False, "error": str(e)})
            break
        results.append(
            {
                "ok": True,
                "manifest": rel.get("manifest", ""),
                "notes": (rel.get("info") or {}).get("notes", ""),
                "writes": api.writes[start:],
            }
        )
    return {"steps": results}


def _lint(chart, out):
    config = helm_sdkpy.Configuration(namespace="default")
    res = asyncio.run(helm_sdkpy.Lint(config).run(chart))
    names = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}
    # helm-sdkpy serializes Go error values as {}: only severity and path survive.
    messages = [
        {"severity": names.get(m.get("Severity"), str(m.get("Severity"))), "path": m.get("Path")}
        for m in res.get("Messages") or []
    ]
    errors = len(res.get("Errors") or [])
    print(
        json.dumps({"charts": res.get("TotalChartsLinted"), "errors": errors, "messages": messages}),
        file=out,
    )
    return 1 if errors else 0


def main(argv):
    # The JSON result goes to the original stdout; anything the Go library prints goes to
    # stderr instead of into the result.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    if len(argv) == 3 and argv[1] == "lint":
        return _lint(argv[2], out)
    if len(argv) == 2 and argv[1] == "run":
        print(json.dumps(asyncio.run(_run(json.load(sys.stdin)))), file=out)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
