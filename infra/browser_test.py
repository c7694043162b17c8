#!/usr/bin/env python3
"""The pages people open from a link, tested in a real browser: Debian's Chromium (/usr/bin/chromium),
driven by Playwright from PyPI (which is told to use that browser and never downloads one).

Run by infra/test.sh after the Rust tests, against the local server (`qchat-local`, built by cargo) on a
free 127.0.0.1 port with a fresh data folder. Each page is opened as a person would open it, clicked where
it has a button, and checked for:
- no Content-Security-Policy violation reported by the browser (and no console error);
- no serious or critical accessibility violation found by axe-core (run in the page by
  axe-playwright-python, which bundles axe-core);
- no personal value of the flow (email address, PSID) in the page's text.
A screenshot of each page is saved under target/browser/ (the path is printed) to be looked at.

Usage: .venv/bin/python infra/browser_test.py [--binary target/debug/qchat-local]
"""
import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import sync_playwright

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHOTS = os.path.join(ROOT, "target", "browser")
CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying hosts this closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
PAGE_ID = "1234567890"
PSID = "24000000000000077"
EMAIL = "browser.person@example.com"
PASSWORD = "violet tram conducts 7 owls"
BINARY = os.path.join(ROOT, "target", "debug", "qchat-local")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The local server on a free port with a fresh data folder; stopped (by its PID) at the end."""

    def __init__(self, binary: str):
        self.data = tempfile.mkdtemp(prefix="qchat-browser-")
        self.url = f"http://127.0.0.1:{free_port()}"
        env = dict(os.environ, QCHAT_ADDR=self.url.removeprefix("http://"), QCHAT_DATA_DIR=self.data,
                   QCHAT_PUBLIC_URL=self.url, RUST_LOG="warn")
        self.log = open(os.path.join(self.data, "server.log"), "wb")
        self.process = subprocess.Popen([binary], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"qchat-local exited with {self.process.returncode}; see {self.log.name}")
            try:
                urllib.request.urlopen(self.url + "/privacy", timeout=2).read()
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        raise RuntimeError("qchat-local did not answer within 60 s")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()
        shutil.rmtree(self.data, ignore_errors=True)

    def api(self, method: str, path: str, body=None, token=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if body is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, (json.loads(raw) if raw else None)

    def wait_for(self, what, find, seconds=15):
        deadline = time.time() + seconds
        while time.time() < deadline:
            found = find()
            if found:
                return found
            time.sleep(0.3)
        raise AssertionError(f"{what} did not appear within {seconds} s")

    def mail_link(self, kind: str) -> str:
        def find():
            out = subprocess.run([sys.executable, os.path.join(ROOT, "infra", "mail_link.py"), kind,
                                  "--mail-dir", os.path.join(self.data, "mail")], capture_output=True, text=True)
            return out.stdout.strip() if out.returncode == 0 else None
        return self.wait_for(f"the {kind} mail", find)

    def sample_event(self, step: str):
        out = subprocess.run([sys.executable, os.path.join(ROOT, "infra", "sample_events.py"), "--page", PAGE_ID,
                              "--psid", PSID, "--url", self.url, "--data-dir", self.data, "--step", step],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr

    def messenger_text(self) -> str:
        path = os.path.join(self.data, "messenger-outbox.jsonl")
        if not os.path.exists(path):
            return ""
        with open(path, encoding="utf-8") as f:
            return f.read()


class PublicPages(unittest.TestCase):
    server: Server

    @classmethod
    def setUpClass(cls):
        cls.server = Server(ARGS.binary)
        cls.playwright = sync_playwright().start()
        cls.browser = cls.playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        os.makedirs(SHOTS, exist_ok=True)

    @classmethod
    def tearDownClass(cls):
        cls.browser.close()
        cls.playwright.stop()
        cls.server.stop()

    def setUp(self):
        self.use_locale("en-US")

    def use_locale(self, locale: str):
        """A fresh browser context whose Accept-Language is `locale`'s, as a person's browser sends it."""
        if getattr(self, "context", None):
            self.context.close()
        self.context = self.browser.new_context(locale=locale)
        self.page = self.context.new_page()
        self.violations = []
        self.console_errors = []
        # The browser reports each CSP violation as a DOM event; the page cannot hide one from this listener,
        # which is added before any of its scripts run.
        self.page.add_init_script(
            "document.addEventListener('securitypolicyviolation', e => "
            "{ (window.__csp = window.__csp || []).push(e.violatedDirective + ' ' + e.blockedURI) })")
        self.page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))

    def tearDown(self):
        self.context.close()

    def open(self, path: str, status: int):
        response = self.page.goto(self.server.url + path)
        self.assertEqual(response.status, status, path)
        csp = response.headers.get("content-security-policy", "")
        # No script may run unless the policy names its source, and never an inline one.
        self.assertIn("default-src 'none'", csp, path)
        self.assertNotIn("unsafe-inline", csp.split("script-src")[1] if "script-src" in csp else "", path)
        return response

    def check(self, name: str, *absent: str):
        """Screenshot, CSP, console, axe and the absence of personal values, for the page shown now."""
        shot = os.path.join(SHOTS, f"{name}.png")
        self.page.screenshot(path=shot, full_page=True)
        print(f"    screenshot: {os.path.relpath(shot, ROOT)}", file=sys.stderr)
        self.assertEqual(self.page.evaluate("window.__csp || []"), [], f"{name}: CSP violations")
        self.assertEqual([e for e in self.console_errors if "Content Security Policy" in e], [], name)
        results = Axe().run(self.page)
        serious = [(v["id"], v["impact"]) for v in results.response["violations"]
                   if v["impact"] in ("serious", "critical")]
        self.assertEqual(serious, [], f"{name}: accessibility violations")
        text = self.page.content()
        for value in absent:
            self.assertNotIn(value, text, f"{name} shows a personal value")
        # The page's language is declared, for screen readers.
        self.assertTrue(self.page.evaluate("document.documentElement.lang"), name)

    def test_the_privacy_notice(self):
        self.open("/privacy", 200)
        self.assertIn("Privacy", self.page.title())
        self.check("privacy")

    def test_a_link_that_names_nothing_gets_link_not_valid(self):
        for name, path in [("unsubscribe-invalid", "/u/not-a-token"),
                           ("verify-invalid", "/verify-email/" + "A" * 43),
                           ("reset-invalid", "/reset-password/" + "A" * 43)]:
            self.open(path, 404)
            self.assertIn("not valid", self.page.content())
            self.check(name)

    def test_an_unknown_deletion_code_gets_not_found(self):
        self.open("/deletion/abcdefghijklmnopqrstuvwxyz", 404)
        self.assertIn("Deletion request not found", self.page.content())
        self.check("deletion-unknown")

    def test_the_public_pages_speak_the_browsers_language(self):
        for locale, lang, invalid, unknown in [
                ("de-DE", "de", "Link ungültig", "Löschantrag nicht gefunden"),
                ("pl-PL", "pl", "Nieprawidłowy link", "Nie znaleziono wniosku o usunięcie")]:
            self.use_locale(locale)
            self.open("/u/not-a-token", 404)
            self.assertEqual(self.page.evaluate("document.documentElement.lang"), lang)
            self.assertIn(invalid, self.page.content())
            self.check(f"unsubscribe-invalid-{lang}")
            self.open("/deletion/abcdefghijklmnopqrstuvwxyz", 404)
            self.assertIn(unknown, self.page.content())
            self.check(f"deletion-unknown-{lang}")

    def test_a_person_confirms_an_address_unsubscribes_and_follows_an_erasure(self):
        server = self.server
        status, _ = server.api("POST", "/api/accounts", {
            "email": EMAIL, "password": PASSWORD, "name": "Ana", "accepted_policy_version": "1"})
        self.assertEqual(status, 202)
        link = server.mail_link("verify-email")
        path = link.removeprefix(server.url)
        self.open(path, 200)
        self.check("verify-email", EMAIL)
        self.page.get_by_role("button").first.click()
        self.page.wait_for_load_state()
        self.assertIn("confirmed", self.page.content().lower())
        self.check("verify-email-done", EMAIL)

        status, session = server.api("POST", "/api/sessions",
                                     {"email": EMAIL, "password": PASSWORD, "remember": False})
        self.assertEqual(status, 200, session)
        token = session["token"]
        status, _ = server.api("POST", "/api/pages", {
            "page_id": PAGE_ID, "page_access_token": f"sample-page-token-{PAGE_ID}", "name": "Ana Bakery"},
            token)
        self.assertEqual(status, 201)

        # A person subscribes in Messenger; the confirmation carries their unsubscribe link.
        server.sample_event("get-started")
        server.sample_event("yes")
        found = server.wait_for("the unsubscribe link", lambda: re.findall(
            re.escape(server.url) + r"/u/[A-Za-z0-9_-]+", server.messenger_text()))
        link = found[-1].removeprefix(server.url)
        self.use_locale("fr-FR")
        self.open(link, 200)
        self.assertIn("Ne plus recevoir de messages de Ana Bakery ?", self.page.content())
        self.check("unsubscribe-fr", PSID, EMAIL)
        self.use_locale("en-US")
        self.open(link, 200)
        self.assertIn("Ana Bakery", self.page.content())
        self.check("unsubscribe", PSID, EMAIL)
        # Opening the page changed nothing (link scanners); the button does.
        _, leads = server.api("GET", f"/api/pages/{PAGE_ID}/leads", token=token)
        self.assertEqual([lead["status"] for lead in leads["leads"]], ["subscribed"])
        self.page.get_by_role("button").first.click()
        self.page.wait_for_load_state()
        self.check("unsubscribe-done", PSID, EMAIL)
        _, leads = server.api("GET", f"/api/pages/{PAGE_ID}/leads", token=token)
        self.assertEqual([lead["status"] for lead in leads["leads"]], ["unsubscribed"])

        # Disconnecting the page erases its leads; its receipt's page says how far the erasure is.
        status, answer = server.api("DELETE", f"/api/pages/{PAGE_ID}", token=token)
        self.assertEqual(status, 202, answer)
        self.open(answer["erasure"]["status_url"].removeprefix(server.url), 200)
        self.assertIn(answer["erasure"]["confirmation_code"], self.page.content())
        self.check("deletion-status", PSID, EMAIL, PAGE_ID)


def main() -> int:
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=BINARY, help="the qchat-local binary")
    ARGS, rest = parser.parse_known_args()
    if not os.path.exists(CHROMIUM):
        print(f"{CHROMIUM} is missing: install Debian's chromium package", file=sys.stderr)
        return 1
    program = unittest.main(argv=[sys.argv[0], *rest], exit=False, verbosity=2)
    return 0 if program.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
