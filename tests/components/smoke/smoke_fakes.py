"""Local fakes for running the real smoke.sh offline (tests/components/smoke/test_smoke.py).

- FakeKubeflow: one HTTP(S) server on 127.0.0.1 that plays the three login hops the way Kubeflow 26.03
  wires them (oauth2-proxy refuses anonymous requests and starts the flow at /oauth2/start with a CSRF
  cookie and a redirect to Dex; Dex forwards to its local connector's login form and, after a POST with
  the right login and password, via its approval endpoint to /oauth2/callback with a code; oauth2-proxy
  checks code and CSRF cookie and sets its session cookie), the central dashboard's env-info, and the
  KFP v2beta1 calls the script makes (healthz, upload, versions, experiments, runs, poll, delete), and
  the Jupyter web app's notebook list behind /jupyter/ (kubeflow/kubeflow v1.10.0, the image of
  Kubeflow 26.03: GET /api/namespaces/<ns>/notebooks answers Flask's compact JSON
  {"notebooks": [...], "status": 200, "success": true, "user": ...}; a denied SubjectAccessReview
  answers 403 {"log": ..., "success": false}). Every request is recorded for the test to assert on.
- fake_bin(): a `k3s` executable answering the `k3s kubectl` calls the script makes, from a state file:
  reads, `apply -f -`, and `create --dry-run=server -o yaml -f -`, which returns the pod as the API
  server would after Istio's injector (native sidecar: istio-proxy among the init containers), or
  without the sidecar (`inject_istio: False`), or fails as a webhook outage does (`dry_run_error`).
"""

from __future__ import annotations

import base64
import json
import os
import pathlib
import re
import secrets
import ssl
import stat
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

SESSION_COOKIE = "oauth2_proxy_kubeflow"  # upstream common/oauth2-proxy/base/oauth2_proxy.cfg cookie_name
CSRF_COOKIE = SESSION_COOKIE + "_csrf"


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes


@dataclass
class FakeKubeflow:
    email: str = ""
    password: str = ""
    namespace: str = ""
    api_prefix: str = "/pipeline/apis/v2beta1"
    login: bool = True  # full mode: everything but /dex and /oauth2 needs the session cookie
    anonymous_ok: bool = False  # a broken gateway that serves without a login
    rbac_denied: bool = False  # Istio's "RBAC: access denied" after the login
    # kubeflow.identityProvider: Dex has two connectors (the provider's and `local`, the static
    # passwords) and answers /dex/auth with its connector chooser instead of forwarding to the form.
    chooser: bool = False
    polls_before_success: int = 1
    # The Jupyter web app behind /jupyter/: "ok"; "rbac-denied" (Istio's 403 on that route only);
    # "forbidden" (the app's own 403: the user may not list notebooks there); "absent" (no /jupyter/
    # VirtualService: the dashboard's catch-all route answers with its page).
    jupyter: str = "ok"
    jupyter_unready: int = 0  # answers 503 "no healthy upstream" this many times first
    final_state: str = "SUCCEEDED"
    requests: list[Request] = field(default_factory=list)
    sessions: set = field(default_factory=set)
    pending: dict = field(default_factory=dict)  # Dex request id -> oauth2 state
    codes: dict = field(default_factory=dict)  # code -> oauth2 state
    uploaded: dict = field(default_factory=dict)
    polls: int = 0

    def start(self, tls: tuple[str, str] | None = None) -> "FakeKubeflow":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _cookies(self) -> dict:
                out = {}
                for part in (self.headers.get("Cookie") or "").split(";"):
                    k, _, v = part.strip().partition("=")
                    if k:
                        out[k] = v
                return out

            def _send(self, code: int, body: bytes | str = b"", headers: dict | None = None, ctype="text/html"):
                data = body.encode() if isinstance(body, str) else body
                self.send_response(code)
                for k, v in (headers or {}).items():
                    for value in (v if isinstance(v, list) else [v]):
                        self.send_header(k, value)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _json(self, obj: dict, code: int = 200):
                self._send(code, json.dumps(obj), ctype="application/json")

            def handle_one(self, method: str):
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fake.requests.append(Request(method, url.path, parse_qs(url.query, keep_blank_values=True),
                                             dict(self.headers), body))
                q = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
                cookies = self._cookies()
                path = url.path
                # --- oauth2-proxy -------------------------------------------------------------------
                if path == "/oauth2/start":
                    state = secrets.token_hex(8)
                    location = ("/dex/auth?client_id=kubeflow-oidc-authservice&redirect_uri=%2Foauth2%2Fcallback"
                                f"&response_type=code&scope=profile+email+groups+openid&state={state}")
                    return self._send(302, headers={"Location": location,
                                                    "Set-Cookie": f"{CSRF_COOKIE}={state}; Path=/; HttpOnly"})
                if path == "/oauth2/callback":
                    code = q.get("code", "")
                    state = fake.codes.pop(code, None)
                    if state is None or cookies.get(CSRF_COOKIE) != state or q.get("state") != state:
                        return self._send(403, "Login Failed: Unable to find a valid CSRF token.")
                    session = secrets.token_hex(16)
                    fake.sessions.add(session)
                    return self._send(302, headers={"Location": "/", "Set-Cookie": [
                        f"{SESSION_COOKIE}={session}; Path=/; HttpOnly", f"{CSRF_COOKIE}=; Path=/; Max-Age=0"]})
                # --- Dex ----------------------------------------------------------------------------
                if path == "/dex/auth":
                    if q.get("client_id") != "kubeflow-oidc-authservice" or q.get("redirect_uri") != "/oauth2/callback":
                        return self._send(400, "Unregistered redirect_uri")
                    if fake.chooser:
                        # Shaped like Dex's login.html: one link per connector, the request's query on each
                        # (html/template escapes its `&`), the outside provider first.
                        query = "&amp;".join(f"{k}={v}" for k, v in (("client_id", q["client_id"]),
                                             ("redirect_uri", "%2Foauth2%2Fcallback"), ("state", q["state"])))
                        links = "".join(
                            f'<div class="theme-form-row">\n  <a href="/dex/auth/{cid}?{query}" target="_self">'
                            f'<button class="dex-btn">Log in with {name}</button></a>\n</div>\n'
                            for cid, name in (("oidc", "Company SSO"), ("local", "Email")))
                        return self._send(200, f"<html><body><h2>Log in to dex</h2>\n{links}</body></html>")
                    return self._send(302, headers={"Location": f"/dex/auth/local?state={q['state']}"})
                if path == "/dex/auth/local":
                    req = secrets.token_hex(8)
                    fake.pending[req] = q["state"]
                    return self._send(302, headers={"Location": f"/dex/auth/local/login?back=&state={req}"})
                if path == "/dex/auth/local/login":
                    req = q.get("state", "")
                    # Shaped like Dex's password.html; the tag spans lines as some themes write it.
                    form = ('<html><body><form method="post"\n    action="/dex/auth/local/login?back=&amp;state='
                            f'{req}">\n<input type="text" id="login" name="login">\n'
                            '<input type="password" id="password" name="password">\n'
                            '<button type="submit">Login</button></form></body></html>')
                    if method == "GET":
                        return self._send(200, form)
                    fields = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
                    if req not in fake.pending or fields.get("login") != fake.email or fields.get("password") != fake.password:
                        return self._send(200, form.replace("<form", "<div>Invalid Email Address and password</div><form"))
                    return self._send(303, headers={"Location": f"/dex/approval?req={req}"})
                if path == "/dex/approval":
                    state = fake.pending.pop(q.get("req", ""), None)
                    if state is None:
                        return self._send(400, "unknown request")
                    code = secrets.token_hex(8)
                    fake.codes[code] = state
                    return self._send(303, headers={"Location": f"/oauth2/callback?code={code}&state={state}"})
                # --- behind the login ------------------------------------------------------------------
                if fake.login and not fake.anonymous_ok and cookies.get(SESSION_COOKIE) not in fake.sessions:
                    if "/apis/" in path or path.startswith("/api/"):
                        return self._send(401, "Unauthorized")
                    return self._send(403, "<html>Sign in with Dex</html>")
                if fake.rbac_denied:
                    return self._send(403, "RBAC: access denied", ctype="text/plain")
                if path == "/":
                    return self._send(200, "<html><title>Kubeflow Central Dashboard</title></html>")
                if path.startswith("/jupyter/"):
                    if fake.jupyter == "absent":  # no /jupyter/ route: the dashboard's (prefix /) serves its page
                        return self._send(200, "<html><title>Kubeflow Central Dashboard</title></html>")
                    return self.jupyter(method, path[len("/jupyter"):])
                if path == "/api/workgroup/env-info":
                    return self._json({"user": fake.email, "platform": {"kubeflowVersion": "26.03"},
                                       "namespaces": [{"user": fake.email, "namespace": fake.namespace, "role": "owner"}],
                                       "isClusterAdmin": False})
                return self.kfp(method, path, q, body)

            def jupyter(self, method: str, path: str):
                if fake.jupyter_unready > 0:
                    fake.jupyter_unready -= 1
                    return self._send(503, "no healthy upstream", ctype="text/plain")
                if fake.jupyter == "rbac-denied":
                    return self._send(403, "RBAC: access denied", ctype="text/plain")
                flask = lambda obj, code=200: self._send(  # noqa: E731 - Flask's jsonify: compact, sorted keys
                    code, json.dumps(obj, separators=(",", ":"), sort_keys=True), ctype="application/json")
                m = re.fullmatch(r"/api/namespaces/([^/]+)/notebooks", path)
                if not m or method != "GET":
                    return flask({"log": "404 Not Found", "status": 404, "success": False, "user": fake.email}, 404)
                if fake.jupyter == "forbidden" or m.group(1) != fake.namespace:
                    msg = f"User '{fake.email}' is not authorized to list kubeflow.org/v1beta1/notebooks in namespace '{m.group(1)}'"
                    return flask({"log": msg, "status": 403, "success": False, "user": fake.email}, 403)
                return flask({"notebooks": [], "status": 200, "success": True, "user": fake.email})

            def kfp(self, method: str, path: str, q: dict, body: bytes):
                prefix = fake.api_prefix
                if not path.startswith(prefix + "/"):
                    return self._send(404, "not found")
                api = path[len(prefix):]
                if api == "/healthz" and method == "GET":
                    return self._json({"commit_sha": "e4ebca31", "tag_name": "2.16.0", "multi_user": fake.login})
                if api == "/pipelines/upload" and method == "POST":
                    fake.uploaded = {"query": q, "body": body}
                    return self._json({"pipeline_id": "p-1", "display_name": q.get("display_name"),
                                       "namespace": q.get("namespace", ""), "created_at": "2026-01-01T00:00:00Z"})
                if api == "/pipelines/p-1/versions" and method == "GET":
                    return self._json({"pipeline_versions": [{"pipeline_id": "p-1", "pipeline_version_id": "v-1",
                                                              "display_name": "x"}], "total_size": 1})
                if api == "/experiments" and method == "POST":
                    return self._json({"experiment_id": "e-1", **json.loads(body)})
                if api == "/runs" and method == "POST":
                    return self._json({"experiment_id": "e-1", "run_id": "r-1", "state": "PENDING"})
                if api == "/runs/r-1" and method == "GET":
                    fake.polls += 1
                    state = fake.final_state if fake.polls > fake.polls_before_success else "RUNNING"
                    details = {"task_details": [{"display_name": "echo", "state": "RUNNING"}]}
                    error = {"error": {"message": "step echo failed"}} if state == "FAILED" else {}
                    return self._json({"experiment_id": "e-1", "run_id": "r-1", "state": state, **error,
                                       "run_details": details, "state_history": [{"state": "PENDING"}]})
                if method == "DELETE" and api in ("/runs/r-1", "/experiments/e-1", "/pipelines/p-1/versions/v-1",
                                                   "/pipelines/p-1"):
                    return self._json({})
                return self._send(404, f"no such KFP call {method} {api}")

            def do_GET(self):
                self.handle_one("GET")

            def do_POST(self):
                self.handle_one("POST")

            def do_DELETE(self):
                self.handle_one("DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def calls(self, method: str | None = None) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests if method is None or r.method == method]


def make_tls(directory: pathlib.Path, names: list[str]) -> tuple[pathlib.Path, tuple[str, str]]:
    """A CA and a server certificate for `names` signed by it (openssl): (ca.crt, (cert, key))."""
    d = directory
    run = lambda *a: subprocess.run(a, check=True, capture_output=True, cwd=d)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
        "-days", "1", "-subj", "/CN=kubeflow-k3s-ca")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tls.key", "-out", "tls.csr", "-subj", f"/CN={names[0]}")
    (d / "san.ext").write_text("subjectAltName=" + ",".join(f"DNS:{n}" for n in names) + "\n")
    run("openssl", "x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "tls.crt", "-days", "1", "-extfile", "san.ext")
    return d / "ca.crt", (str(d / "tls.crt"), str(d / "tls.key"))


FAKE_K3S = r'''#!{python}
# A fake `k3s kubectl` for smoke.sh: answers its reads from {state}, logs every call to {log}.
import json, re, sys
state = json.load(open({state!r}))
args = sys.argv[1:]
if args[:1] != ["kubectl"]:
    sys.exit("fake k3s: only kubectl")
if not (len(args) > 1 and re.fullmatch(r"--request-timeout=\d+s", args[1])):
    sys.exit("fake k3s: every call must be bounded with --request-timeout: " + " ".join(args))
a = " ".join(args[2:])
with open({log!r}, "a") as f:
    f.write(a + "\n")
def out(text):
    sys.stdout.write(text)
    sys.exit(0)
if a.startswith("apply -f -"):
    state["applied"] = sys.stdin.read()
    json.dump(state, open({state!r}, "w"))
    out("")
if "create --dry-run=server -o yaml -f -" in a:
    # The API server's answer to a server-side dry run: the pod after the mutating webhooks.
    import yaml
    pod = json.loads(sys.stdin.read())
    state["dry_run"] = pod
    json.dump(state, open({state!r}, "w"))
    if state.get("dry_run_error"):
        sys.stderr.write(state["dry_run_error"] + "\n")
        sys.exit(1)
    pod["metadata"].update(uid="0d4c5a8e-0000-4000-8000-000000000000", creationTimestamp="2026-01-01T00:00:00Z")
    spec = pod["spec"]
    if state.get("inject_istio", True):  # Istio's injector with native sidecars (ENABLE_NATIVE_SIDECARS)
        pod["metadata"].setdefault("annotations", {{}})["sidecar.istio.io/status"] = json.dumps(
            {{"initContainers": ["istio-validation", "istio-proxy"], "containers": None,
              "volumes": ["istio-envoy", "istio-data", "istio-podinfo", "istio-token", "istiod-ca-cert"]}})
        spec["initContainers"] = [
            {{"name": "istio-validation", "image": "docker.io/istio/proxyv2:1.28.0", "args": ["istio-iptables", "--run-validation"]}},
            {{"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.28.0", "restartPolicy": "Always",
              "args": ["proxy", "sidecar"], "ports": [{{"containerPort": 15090, "name": "http-envoy-prom"}}]}}]
    spec.setdefault("volumes", []).append({{"name": "kube-api-access-x1y2z", "projected": {{"sources": []}}}})
    spec.update(dnsPolicy="ClusterFirst", schedulerName="default-scheduler")
    pod["status"] = {{"phase": "Pending", "qosClass": "Burstable"}}
    out(yaml.safe_dump(pod, sort_keys=True))
if " get rolebinding " in " " + a:
    out("")
if "get certificate" in a:
    out("True")
if "get secret" in a:  # the gateway's TLS Secret: ca.crt (CA issuers only, as cert-manager writes it) or tls.crt
    if "ca\\.crt" in a:
        out(state.get("ca_b64", ""))
    if "tls\\.crt" in a:
        out(state.get("tls_b64", ""))
if "get service istio-ingressgateway" in a:
    if "{{.spec.type}}" in a:
        out(state["service_type"])
    if "loadBalancer" in a:
        out(state.get("lb_ip", ""))
    if "nodePort" in a:
        out(str(state["port"]))
if a.startswith("get node "):
    out("127.0.0.1")
if a.startswith("get namespace ") or " get serviceaccount " in " " + a:
    out("")
if "get service ml-pipeline" in a:
    out("127.0.0.1")
if " get pod " in " " + a:
    out(state.get("pod_phase", "Succeeded"))
if " logs " in " " + a:
    out("NVIDIA-SMI 580.00  Driver Version: 580.00  CUDA Version: 13.0\n")
if " delete pod " in " " + a:
    out("")
sys.exit("fake k3s: unexpected call: " + a)
'''


def fake_bin(directory: pathlib.Path, state: dict, *, no_dns: bool) -> tuple[pathlib.Path, pathlib.Path, pathlib.Path]:
    """(bin dir for PATH, k3s path, kubectl log). The bin dir has `sudo` (when not root) and, with
    no_dns, a `getent` that resolves nothing."""
    bindir = directory / "bin"
    bindir.mkdir(exist_ok=True)
    state_file, log = directory / "k3s-state.json", directory / "kubectl.log"
    state_file.write_text(json.dumps(state))
    k3s = bindir / "k3s"
    k3s.write_text(FAKE_K3S.format(python=sys.executable, state=str(state_file), log=str(log)))
    scripts = {}
    if os.geteuid() != 0:
        scripts["sudo"] = '#!/bin/sh\n[ "$1" = -n ] && shift\nexec "$@"\n'
    if no_dns:
        scripts["getent"] = "#!/bin/sh\nexit 2\n"
    for name, text in scripts.items():
        (bindir / name).write_text(text)
    for f in bindir.iterdir():
        f.chmod(f.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return bindir, k3s, log


EC_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1")


def make_staging_tls(directory: pathlib.Path, names: list[str]) -> tuple[pathlib.Path, tuple[str, str]]:
    """Let's Encrypt staging's shape: a root no one trusts, an intermediate, a certificate for `names`.
    Returns (the Secret's tls.crt: certificate + intermediate, as cert-manager's ACME issuer writes it and
    the gateway serves it; (that chain, key) for the server). No ca.crt: ACME gives none."""
    d = directory  # ECDSA P-256 keys, as staging's E-series intermediates: quick to generate
    run = lambda *a: subprocess.run(a, check=True, capture_output=True, cwd=d)  # noqa: E731
    run("openssl", "req", "-x509", *EC_KEY, "-nodes", "-keyout", "root.key", "-out", "root.crt",
        "-days", "1", "-subj", "/CN=(STAGING) Pretend Root X9")
    run("openssl", "req", *EC_KEY, "-nodes", "-keyout", "int.key", "-out", "int.csr",
        "-subj", "/CN=(STAGING) Fake Intermediate E9")
    (d / "int.ext").write_text("basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n")
    run("openssl", "x509", "-req", "-in", "int.csr", "-CA", "root.crt", "-CAkey", "root.key", "-CAcreateserial",
        "-out", "int.crt", "-days", "1", "-extfile", "int.ext")
    run("openssl", "req", *EC_KEY, "-nodes", "-keyout", "tls.key", "-out", "tls.csr", "-subj", f"/CN={names[0]}")
    (d / "san.ext").write_text("subjectAltName=" + ",".join(f"DNS:{n}" for n in names) + "\n")
    run("openssl", "x509", "-req", "-in", "tls.csr", "-CA", "int.crt", "-CAkey", "int.key", "-CAcreateserial",
        "-out", "leaf.crt", "-days", "1", "-extfile", "san.ext")
    chain = d / "tls.crt"
    chain.write_text((d / "leaf.crt").read_text() + (d / "int.crt").read_text())
    return chain, (str(chain), str(d / "tls.key"))


def ca_b64(ca: pathlib.Path) -> str:
    return base64.b64encode(ca.read_bytes()).decode()


def report(stdout: str) -> dict[str, str]:
    return dict(line.split("\t", 1) for line in stdout.splitlines() if "\t" in line)


def multipart_file(body: bytes) -> str:
    """The uploaded file of a multipart/form-data body (field uploadfile)."""
    m = re.search(rb'name="uploadfile"; filename="[^"]*"\r\n(?:[^\r\n]+\r\n)*\r\n(.*?)\r\n--', body, re.S)
    return m.group(1).decode() if m else ""
