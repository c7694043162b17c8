"""Measures what the Lambda memory sizes in template.yaml are chosen from: CPU time per request and peak
memory of the local server (the same handlers the functions run), for sign-ins (argon2id), webhook
events and the leads list. The standard library only; Linux (/proc).

Usage: cargo build -p qchat-local && python3 infra/measure_functions.py [--n 30]
       [--binary target/debug/qchat-local]   (argon2id is optimised in debug builds too)
"""

import argparse
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_ms(pid):
    """User plus system CPU time of the process so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / TICKS


def status_mb(pid, field):
    """A memory figure of /proc/<pid>/status: VmHWM is the peak resident set (with the binary's own
    pages, large for a debug build), RssAnon the heap and stacks now."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def call(url, method="GET", body=None, token=None, headers=None):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def newest_link(mail_dir, kind):
    out = subprocess.run(
        [sys.executable, os.path.join(HERE, "mail_link.py"), kind, "--mail-dir", mail_dir],
        capture_output=True, text=True, check=True,
    )
    return out.stdout.strip()


def measure(pid, n, action):
    action(0)  # warm: first-use work (keys, connections) is not what a warm function pays per request
    before = cpu_ms(pid)
    for i in range(1, n + 1):
        action(i)
    return (cpu_ms(pid) - before) / n


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--binary", default=os.path.join(HERE, "..", "target", "debug", "qchat-local"))
    parser.add_argument("--n", type=int, default=30)
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="qchat-measure-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, QCHAT_DATA_DIR=data_dir, QCHAT_ADDR=f"127.0.0.1:{port}", QCHAT_LOG="warn")
    server = subprocess.Popen([args.binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                if call(f"{base}/privacy")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        idle = status_mb(server.pid, "RssAnon")

        email, password = "measure@example.com", "violet tram conducts 7 owls"
        status, _ = call(f"{base}/api/accounts", "POST", {
            "email": email, "password": password, "name": "M", "accepted_policy_version": "1"})
        assert status == 202, status
        mail_dir = os.path.join(data_dir, "mail")
        for _ in range(100):
            try:
                link = newest_link(mail_dir, "verify-email")
                break
            except subprocess.CalledProcessError:
                time.sleep(0.1)
        status, _ = call(link, "POST", b"", headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert status in (200, 303), status

        tokens = []

        def sign_in(_):
            status, body = call(f"{base}/api/sessions", "POST",
                                {"email": email, "password": password, "remember": False})
            assert status in (200, 201), status
            tokens.append(json.loads(body)["token"])

        # Sign-ins from one address stay under its limit: each successful one gives its slot back.
        sign_in_ms = measure(server.pid, args.n, sign_in)
        after_sign_ins = status_mb(server.pid, "RssAnon")
        token = tokens[-1]
        page = "1234567890"
        status, _ = call(f"{base}/api/pages", "POST", {
            "page_id": page, "page_access_token": f"sample-page-token-{page}", "name": "Measure"}, token)
        assert status in (200, 201), status

        with open(os.path.join(data_dir, "secrets.json"), encoding="utf-8") as f:
            secret = json.load(f)["fb_app_secret"].encode()

        def event(i):
            psid = str(24000000000000000 + 1000 + i)
            body = json.dumps({"object": "page", "entry": [{"id": page, "time": 1, "messaging": [{
                "sender": {"id": psid}, "recipient": {"id": page}, "timestamp": 1700000000000 + i,
                "message": {"mid": f"m-{i}-{time.time_ns()}", "text": "hello"}}]}]}).encode()
            sig = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
            status, _ = call(f"{base}/webhook", "POST", body, headers={"X-Hub-Signature-256": sig})
            assert status == 200, status

        before_events = status_mb(server.pid, "RssAnon")
        event_ms = measure(server.pid, args.n, event)
        after_events = status_mb(server.pid, "RssAnon")

        def leads(_):
            status, _ = call(f"{base}/api/pages/{page}/leads", token=token)
            assert status == 200, status

        leads_ms = measure(server.pid, args.n, leads)
        print(json.dumps({
            "cpu_ms_per_sign_in": round(sign_in_ms, 1),
            "cpu_ms_per_webhook_event": round(event_ms, 1),
            "cpu_ms_per_leads_list": round(leads_ms, 1),
            "anon_mb_at_start": round(idle, 1),
            "anon_mb_after_sign_ins": round(after_sign_ins, 1),
            "anon_mb_webhook_events_added": round(after_events - before_events, 1),
            "anon_mb_after": round(status_mb(server.pid, "RssAnon"), 1),
            "peak_rss_mb_with_binary": round(status_mb(server.pid, "VmHWM"), 1),
            "requests_each": args.n,
        }))
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
