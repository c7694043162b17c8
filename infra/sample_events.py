"""Posts correctly signed sample Messenger webhook events to a running local qchat server, so you can
watch leads appear and stop without a Facebook app.

Usage: python3 infra/sample_events.py --page PAGE_ID [--psid PSID] [--url http://127.0.0.1:3000]
                                      [--data-dir .qchat] [--step first|get-started|yes|stop|all]
       python3 infra/sample_events.py --page PAGE_ID [--psid PSID] --step data-deletion [--asid ASID]

The data-deletion step plays Meta's data-deletion callback: it records in <data dir>/ids-for-pages.json
that the person ASID is PSID on the page (what Meta's ids_for_pages would answer) and posts a signed_request
for ASID to /facebook/data-deletion, printing the answer (the status page's URL and confirmation code).

The page must be connected first (POST /api/pages); without QCHAT_GRAPH_URL the local server accepts
only its sample token for that, "sample-page-token-<page id>". The app secret is read from the local
server's <data dir>/secrets.json (or QCHAT_FB_APP_SECRET), exactly as Meta would sign with it.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def app_secret(data_dir: str) -> str:
    if os.environ.get("QCHAT_FB_APP_SECRET"):
        return os.environ["QCHAT_FB_APP_SECRET"]
    with open(os.path.join(data_dir, "secrets.json"), encoding="utf-8") as f:
        return json.load(f)["fb_app_secret"]


def envelope(page: str, psid: str, event: dict) -> dict:
    now = int(time.time() * 1000)
    item = {"sender": {"id": psid}, "recipient": {"id": page}, "timestamp": now}
    item.update(event)
    return {"object": "page", "entry": [{"id": page, "time": now, "messaging": [item]}]}


def events(step: str, psid: str):
    mid = lambda: f"m_sample_{psid}_{time.time_ns()}"
    catalogue = {
        "first": {"message": {"mid": mid(), "text": "Hello! Do you deliver on Sundays?"}},
        "get-started": {"postback": {"mid": mid(), "title": "Get Started", "payload": "GET_STARTED",
                                      "referral": {"ref": "winter-flyer", "source": "SHORTLINK", "type": "OPEN_THREAD"}}},
        "yes": {"message": {"mid": mid(), "text": "Yes", "quick_reply": {"payload": "QCHAT_CONSENT_YES"}}},
        "stop": {"message": {"mid": mid(), "text": "STOP"}},
    }
    order = ["get-started", "first", "yes", "stop"] if step == "all" else [step]
    return [(name, catalogue[name]) for name in order]


def post(url: str, secret: str, body: dict) -> int:
    raw = json.dumps(body, ensure_ascii=True).encode()
    signature = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        f"{url}/webhook", data=raw, method="POST",
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={signature}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def data_deletion(url: str, secret: str, data_dir: str, page: str, psid: str, asid: str) -> int:
    path = os.path.join(data_dir, "ids-for-pages.json")
    try:
        with open(path, encoding="utf-8") as f:
            mapping = json.load(f)
    except FileNotFoundError:
        mapping = {}
    mapping.setdefault(asid, {})[page] = psid
    with open(path, "w", encoding="utf-8") as f:
        json.dump(mapping, f)
    payload = b64url(json.dumps({"algorithm": "HMAC-SHA256", "expires": 0,
                                 "issued_at": int(time.time()), "user_id": asid}).encode())
    signature = b64url(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())
    body = urllib.parse.urlencode({"signed_request": f"{signature}.{payload}"}).encode()
    request = urllib.request.Request(
        f"{url}/facebook/data-deletion", data=body, method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            print(f"data-deletion -> HTTP {response.status} {response.read().decode()}")
            return 0
    except urllib.error.HTTPError as e:
        print(f"data-deletion -> HTTP {e.code} {e.read().decode()}")
        return 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--page", required=True,
                        help="a page id connected with POST /api/pages (token sample-page-token-<page id>)")
    parser.add_argument("--psid", default="24000000000000001", help="the sample person's page-scoped id")
    parser.add_argument("--url", default=os.environ.get("QCHAT_PUBLIC_URL", "http://127.0.0.1:3000"))
    parser.add_argument("--data-dir", default=os.environ.get("QCHAT_DATA_DIR", ".qchat"))
    parser.add_argument("--step", default="all",
                        choices=["first", "get-started", "yes", "stop", "all", "data-deletion"])
    parser.add_argument("--asid", default="10158000000000001",
                        help="the sample person's app-scoped id (data-deletion step)")
    args = parser.parse_args()
    secret = app_secret(args.data_dir)
    if args.step == "data-deletion":
        return data_deletion(args.url.rstrip("/"), secret, args.data_dir, args.page, args.psid, args.asid)
    for name, event in events(args.step, args.psid):
        status = post(args.url.rstrip("/"), secret, envelope(args.page, args.psid, event))
        print(f"{name:12} -> HTTP {status}")
        if status != 200:
            return 1
        time.sleep(0.3)
    return 0


if __name__ == "__main__":
    sys.exit(main())
