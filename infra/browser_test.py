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
import datetime
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
from playwright.sync_api import expect, sync_playwright

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

    def __init__(self, binary: str, **extra_env):
        self.data = tempfile.mkdtemp(prefix="qchat-browser-")
        self.url = f"http://127.0.0.1:{free_port()}"
        env = dict(os.environ, QCHAT_ADDR=self.url.removeprefix("http://"), QCHAT_DATA_DIR=self.data,
                   QCHAT_PUBLIC_URL=self.url, RUST_LOG="warn", **extra_env)
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

    def erasure_done(self, code: str) -> bool:
        """Whether the erasure `code` names is completed (its status page, as JSON)."""
        req = urllib.request.Request(f"{self.url}/deletion/{code}", headers={"Accept": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())["status"] == "completed"

    def wait_for(self, what, find, seconds=15):
        deadline = time.time() + seconds
        while time.time() < deadline:
            found = find()
            if found:
                return found
            time.sleep(0.3)
        raise AssertionError(f"{what} did not appear within {seconds} s")

    def newest_mail_link(self, kind: str) -> str:
        """The newest link of `kind` in the mail outbox now, or "" when there is none."""
        out = subprocess.run([sys.executable, os.path.join(ROOT, "infra", "mail_link.py"), kind,
                              "--mail-dir", os.path.join(self.data, "mail")], capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else ""

    def mail_link(self, kind: str, other_than: str = "") -> str:
        """The newest link of `kind` in the mail outbox; with `other_than`, one that is not that (older) link."""
        def find():
            link = self.newest_mail_link(kind)
            return link if link and link != other_than else None
        return self.wait_for(f"the {kind} mail", find)

    def many_leads(self, count: int):
        """`count` more pending leads (each a stranger's first message), posted in this process for speed."""
        sys.path.insert(0, os.path.join(ROOT, "infra"))
        import sample_events
        secret = sample_events.app_secret(self.data)
        for n in range(count):
            psid = str(25000000000000000 + n)
            for _, event in sample_events.events("first", psid):
                status = sample_events.post(self.url, secret, sample_events.envelope(PAGE_ID, psid, event))
                assert status == 200, status

    def sample_event(self, step: str, psid: str = PSID):
        out = subprocess.run([sys.executable, os.path.join(ROOT, "infra", "sample_events.py"), "--page", PAGE_ID,
                              "--psid", psid, "--url", self.url, "--data-dir", self.data, "--step", step],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr

    def messenger_text(self) -> str:
        path = os.path.join(self.data, "messenger-outbox.jsonl")
        if not os.path.exists(path):
            return ""
        with open(path, encoding="utf-8") as f:
            return f.read()


class BrowserCase(unittest.TestCase):
    """A fresh browser context per test, with the CSP listener and the checks every screen gets."""
    server: Server
    server_env: dict = {}

    @classmethod
    def setUpClass(cls):
        cls.server = Server(ARGS.binary, **cls.server_env)
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


class PublicPages(BrowserCase):

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

        # The account holder erases the person's lead; once done, its status page names the page (read
        # when the page is shown), in the reader's language.
        lead = leads["leads"][0]["id"]
        status, answer = server.api("DELETE", f"/api/pages/{PAGE_ID}/leads/{lead}", token=token)
        self.assertEqual(status, 202, answer)
        lead_code = answer["erasure"]["confirmation_code"]
        lead_status = answer["erasure"]["status_url"].removeprefix(server.url)
        server.wait_for("the lead's erasure", lambda: server.erasure_done(lead_code))
        self.open(lead_status, 200)
        self.assertIn("Page: Ana Bakery", self.page.locator("main").inner_text())
        self.check("deletion-status-lead", PSID, EMAIL, PAGE_ID, lead)
        self.use_locale("de-DE")
        self.open(lead_status, 200)
        self.assertIn("Seite: Ana Bakery", self.page.locator("main").inner_text())
        self.check("deletion-status-lead-de", PSID, EMAIL, PAGE_ID, lead)
        self.use_locale("en-US")

        # Disconnecting the page erases its leads; its receipt's page says how far the erasure is (its
        # second pass waits a minute: the flow tests follow it to the end).
        status, answer = server.api("DELETE", f"/api/pages/{PAGE_ID}", token=token)
        self.assertEqual(status, 202, answer)
        self.open(answer["erasure"]["status_url"].removeprefix(server.url), 200)
        self.assertIn(answer["erasure"]["confirmation_code"], self.page.content())
        self.check("deletion-status", PSID, EMAIL, PAGE_ID)
        # The page is gone, and with it its name: the lead's receipt says so instead.
        self.open(lead_status, 200)
        shown = self.page.locator("main").inner_text()
        self.assertIn("Page: a page that is no longer connected to qchat", shown)
        self.assertNotIn("Ana Bakery", shown)
        self.check("deletion-status-page-gone", PSID, EMAIL, PAGE_ID, lead)


class PrivacyNoticeAndRecord(BrowserCase):
    """The privacy notice a person reads and the operator's record of processing, in English, German and
    French (as the browser asks): each with the checks of `check`, its headings in order for screen
    readers, and the notice linking the record and back."""

    def test_the_privacy_notice_and_the_record_in_three_languages(self):
        for locale, lang, notice_title, record_title, collected in [
                ("en-US", "en", "Privacy notice", "Record of processing", "What is collected, why, and for how long"),
                ("de-DE", "de", "Datenschutzhinweise", "Verzeichnis von Verarbeitungstätigkeiten",
                 "Was erhoben wird, wozu und wie lange"),
                ("fr-FR", "fr", "Politique de confidentialité", "Registre des activités de traitement",
                 "Ce qui est collecté, pourquoi et pour combien de temps")]:
            self.use_locale(locale)
            response = self.open("/privacy", 200)
            self.assertEqual(response.headers.get("content-language"), lang)
            self.assertEqual(self.page.evaluate("document.documentElement.lang"), lang)
            self.assertEqual(self.page.title(), notice_title)
            expect(self.page.get_by_role("heading", level=1)).to_have_text(notice_title)
            expect(self.page.get_by_role("heading", name=collected, exact=True)).to_be_visible()
            # The notice is not the attribute table: no table at all before the terms.
            self.assertEqual(self.page.locator("main > section:not(#terms) table").count(), 0)
            self.assertNotIn("1970-01-01", self.page.content())
            self.check(f"privacy-{lang}")

            self.page.locator("a[href='/privacy/record']").click()
            self.page.wait_for_load_state()
            self.assertTrue(self.page.url.endswith("/privacy/record"), self.page.url)
            self.assertEqual(self.page.evaluate("document.documentElement.lang"), lang)
            expect(self.page.get_by_role("heading", level=1)).to_have_text(record_title)
            # Every stored value of the inventory is a row of the record.
            self.assertGreater(self.page.locator("#inventory tr").count(), 100)
            self.check(f"privacy-record-{lang}")
            self.page.locator("a[href='/privacy']").first.click()
            self.page.wait_for_load_state()
            expect(self.page.get_by_role("heading", level=1)).to_have_text(notice_title)

OWNER_EMAIL = "console.owner@example.com"
OWNER_PASSWORD = "seven lanterns hum over 9 bridges"
SECOND_PSID = "24000000000000078"


class Console(BrowserCase):
    """The console at /app, clicked through as its account holder (who is also the operator here) would:
    every screen gets the checks of `check` (CSP, axe, no personal value in the page where none belongs),
    and no request the console makes carries a personal value in its URL."""
    server_env = {"QCHAT_OPERATOR_EMAIL": OWNER_EMAIL}

    def setUp(self):
        super().setUp()
        self.urls = []
        self.page.on("request", lambda r: self.urls.append(r.url))

    def tearDown(self):
        for url in self.urls:
            for value in (OWNER_EMAIL, OWNER_PASSWORD, PSID, SECOND_PSID, "sample-page-token"):
                self.assertNotIn(value, url, "a personal value in a URL")
        super().tearDown()

    def heading(self, text: str):
        self.page.get_by_role("heading", name=text, exact=True).wait_for()

    def no_flash(self):
        """A flash message belongs to the screen its action led to; the next screen shows none."""
        expect(self.page.locator("#notice")).to_have_text("")

    def download(self, button: str) -> dict:
        """Clicks `button` and answers the JSON file the browser saves."""
        with self.page.expect_download() as info:
            self.page.get_by_role("button", name=button, exact=True).click()
        with open(info.value.path(), encoding="utf-8") as f:
            return json.load(f)

    def receipt(self) -> str:
        """The erasure receipt on screen: its code, and its status link that opens the public page."""
        code = self.page.locator(".code").inner_text()
        self.assertRegex(code, r"^\S{8,}$")
        link = self.page.get_by_role("link", name="Follow the erasure on its status page")
        self.assertEqual(link.get_attribute("href"), f"{self.server.url}/deletion/{code}")
        return code

    def assertFocusOnRow(self, index: int):
        """The keyboard focus is on the table body's row `index` (0-based), not lost on the page."""
        self.assertEqual(self.page.evaluate(
            "Array.from(document.querySelector('tbody').rows).indexOf(document.activeElement)"), index,
            self.page.evaluate("document.activeElement.outerHTML.slice(0, 120)"))

    def sign_in(self, remember=False):
        self.page.get_by_label("Email", exact=True).fill(OWNER_EMAIL)
        self.page.get_by_label("Password", exact=True).fill(OWNER_PASSWORD)
        box = self.page.get_by_label("Keep me signed in for 30 days")
        self.assertFalse(box.is_checked(), "keep me signed in is off by default")
        if remember:
            box.check()
        self.page.get_by_role("button", name="Sign in").click()
        self.heading("Pages")

    def test_the_console_shell_and_assets_are_same_origin_under_a_strict_csp(self):
        response = self.open("/app", 200)
        csp = response.headers["content-security-policy"]
        self.assertIn("script-src 'self'", csp)
        self.assertNotIn("unsafe", csp)
        self.assertEqual(response.headers.get("x-frame-options"), "DENY")
        self.heading("Sign in")
        for url in self.urls:
            self.assertTrue(url.startswith(self.server.url), f"third-party request: {url}")
            if "/app/assets/" in url:
                asset = urllib.request.urlopen(url, timeout=5)
                self.assertIn("immutable", asset.headers["cache-control"])
        self.check("console-signin")

    def test_an_account_holder_does_everything_from_the_console(self):
        server, page = self.server, self.page
        # Sign up, with the policy shown and accepted.
        self.open("/app", 200)
        page.get_by_role("link", name="Create an account").click()
        self.heading("Create an account")
        self.assertIn("Privacy policy, version 1", page.content())
        page.get_by_label("Email", exact=True).fill(OWNER_EMAIL)
        page.get_by_label("Password", exact=True).fill(OWNER_PASSWORD)
        page.get_by_label("Name (optional)", exact=True).fill("Ana")
        self.check("console-signup")
        page.get_by_label("I accept the privacy policy").check()
        page.get_by_role("button", name="Create account").click()
        self.heading("Check your mail")
        self.check("console-signup-sent")
        # The mailed link confirms the address (its page is the server-rendered one).
        self.open(server.mail_link("verify-email").removeprefix(server.url), 200)
        page.get_by_role("button").first.click()
        page.wait_for_load_state()
        self.assertIn("confirmed", page.content().lower())

        # Sign in ("keep me signed in" off: a cookie that ends with the browser), then sign out.
        self.open("/app", 200)
        self.heading("Sign in")
        self.sign_in()
        cookie = [c for c in self.context.cookies() if c["name"] == "qchat_session"][0]
        self.assertEqual(cookie["expires"], -1, "a browser-session cookie")
        self.assertTrue(cookie["httpOnly"])
        self.check("console-pages-empty", OWNER_PASSWORD)
        page.get_by_role("button", name="Sign out").click()
        self.heading("Sign in")
        self.assertEqual([c for c in self.context.cookies() if c["name"] == "qchat_session"], [])
        page.reload()
        self.heading("Sign in")

        # Forgot password: the request is answered alike for any address; the mailed link's page exists.
        page.get_by_role("link", name="Forgot your password?").click()
        self.heading("Forgot your password")
        page.get_by_label("Email", exact=True).fill(OWNER_EMAIL)
        page.get_by_role("button", name="Send me a reset link").click()
        self.heading("Check your mail")
        self.check("console-forgot-sent", OWNER_EMAIL)
        reset = server.mail_link("reset-password").removeprefix(server.url)
        self.open(reset, 200)
        page.goto(server.url + "/app#signin")
        self.heading("Sign in")
        self.sign_in()

        # Connect a page, then replace its token.
        page.get_by_label("Page id", exact=True).fill(PAGE_ID)
        page.get_by_label("Page access token", exact=True).fill(f"sample-page-token-{PAGE_ID}")
        page.get_by_label("Name (optional)", exact=True).fill("Ana Bakery")
        page.get_by_role("button", name="Connect").click()
        page.get_by_role("cell", name="Ana Bakery", exact=True).wait_for()
        self.check("console-pages", OWNER_PASSWORD)
        page.get_by_label("New page access token", exact=True).fill(f"sample-page-token-{PAGE_ID}-a1b2c3")
        page.get_by_role("button", name="Replace token").click()
        # The server's note is the message, once ("Token replaced.", not "Token replaced. token replaced").
        expect(page.locator("#notice")).to_have_text("Token replaced.")
        self.check("console-token-replaced", OWNER_PASSWORD)

        # Leads: one subscribed, one still asked to confirm; filter, then open the proof.
        server.sample_event("get-started")
        server.sample_event("yes")
        server.sample_event("get-started", SECOND_PSID)
        token = server.api("POST", "/api/sessions", {"email": OWNER_EMAIL, "password": OWNER_PASSWORD,
                                                     "remember": False})[1]["token"]
        server.wait_for("two leads", lambda: len(server.api("GET", f"/api/pages/{PAGE_ID}/leads",
                                                            token=token)[1]["leads"]) == 2)
        page.get_by_role("link", name="Leads").click()
        self.heading("Leads")
        self.no_flash()
        self.assertEqual(page.locator("tbody tr").count(), 2)
        page.get_by_label("Status", exact=True).select_option("subscribed")
        expect(page.locator("tbody tr")).to_have_count(1)
        page.get_by_role("cell", name="subscribed", exact=True).wait_for()
        self.check("console-leads", PSID, SECOND_PSID)
        page.get_by_role("button", name="Open consent proof").click()
        self.heading("Consent proof")
        self.assertIn("Consent proof verified", page.content())
        self.no_flash()
        self.check("console-consent-proof", PSID, SECOND_PSID)
        # The lead's export is a file the browser saves (its contents are the person's, so not on screen).
        exported = self.download("Download this lead's data")
        self.assertEqual(exported["lead"]["status"], "subscribed")
        self.assertIn(PSID, json.dumps(exported))
        page.get_by_text("downloaded as a JSON file").wait_for()
        self.check("console-lead-exported", PSID, SECOND_PSID)

        # Compose, preview, schedule for now and follow until sent; then schedule one later and cancel it.
        page.get_by_role("link", name="Broadcasts").click()
        self.heading("Broadcasts")
        page.get_by_label("Message", exact=True).fill("Fresh bread at 7 tomorrow!")
        page.get_by_label("Button 1 title", exact=True).fill("Order")
        page.get_by_label("Button 1 address", exact=True).fill("https://example.com/order")
        page.get_by_label("Button 2 title", exact=True).fill("Opening hours")
        page.get_by_label("Button 2 address", exact=True).fill("https://example.com/hours")
        page.get_by_role("button", name="Preview").click()
        page.get_by_text("1 would get it now").wait_for()
        self.check("console-broadcast-preview", PSID)
        page.get_by_role("button", name="Schedule").click()
        self.heading("Broadcast")
        page.get_by_text("State: done").wait_for(timeout=30000)
        self.assertIn("sent", page.locator("#counts").inner_text())
        self.assertIn("Order → https://example.com/order", page.content())
        self.check("console-broadcast-done", PSID)
        sent = [json.loads(line) for line in server.messenger_text().splitlines()
                if "Fresh bread" in line][-1]
        self.assertIn("https://example.com/order", json.dumps(sent))
        self.assertIn("https://example.com/hours", json.dumps(sent))
        page.get_by_role("button", name="Back to broadcasts").click()
        self.heading("Broadcasts")
        self.no_flash()
        # An audience filter: only people who came through the "spring-ad" ref, subscribed since yesterday.
        page.get_by_label("Message", exact=True).fill("Closed on Monday")
        page.get_by_label("Send at (optional)", exact=True).fill(
            (datetime.datetime.now() + datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"))
        page.get_by_label("Only people who came through these opt-in refs (optional)", exact=True).fill("spring-ad, qr-door")
        page.get_by_label("Only people subscribed since (optional)", exact=True).fill(
            (datetime.datetime.now() - datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"))
        page.get_by_role("button", name="Preview").click()
        page.get_by_text("0 would get it now").wait_for()
        self.check("console-broadcast-audience-preview", PSID)
        page.get_by_role("button", name="Schedule").click()
        page.get_by_text("State: scheduled").wait_for()
        self.assertIn("Audience: refs spring-ad, qr-door, subscribed since", page.content())
        self.check("console-broadcast-scheduled", PSID)
        page.get_by_role("button", name="Cancel broadcast").click()
        page.get_by_text("State: cancelled").wait_for()
        self.check("console-broadcast-cancelled", PSID)
        # More than a page of broadcasts (the API's default page is 20): "More" shows the rest.
        later = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        for n in range(19):
            status, _ = server.api("POST", f"/api/pages/{PAGE_ID}/broadcasts",
                                   {"text": f"Offer {n}", "send_at": later}, token)
            self.assertEqual(status, 201)
        page.get_by_role("button", name="Back to broadcasts").click()
        self.heading("Broadcasts")
        expect(page.locator("tbody tr")).to_have_count(20)
        # By keyboard: the last "More" hides itself, and the focus goes on to the first row it added.
        page.get_by_role("button", name="More").focus()
        page.keyboard.press("Enter")
        expect(page.locator("tbody tr")).to_have_count(21)
        expect(page.get_by_role("button", name="More")).to_be_hidden()
        self.assertFocusOnRow(20)
        self.check("console-broadcasts-more", PSID)

        # The security log, 50 entries a screen (more sign-ins make more than that): "More" shows the rest.
        for _ in range(50):
            self.assertEqual(server.api("POST", "/api/sessions", {"email": OWNER_EMAIL, "password": OWNER_PASSWORD,
                                                                  "remember": False})[0], 200)
        _, log = server.api("GET", "/api/account/security-log", token=token)
        self.assertGreater(len(log["events"]), 50)
        page.get_by_role("link", name="Security log").click()
        self.heading("Security log")
        expect(page.locator("tbody tr")).to_have_count(50)
        page.get_by_role("button", name="More").click()
        expect(page.locator("tbody tr")).to_have_count(len(log["events"]))
        expect(page.get_by_role("button", name="More")).to_be_hidden()
        self.check("console-security-log", OWNER_PASSWORD)

        # The operator publishes a policy and sends a breach notice; the audit trail lists both.
        page.get_by_role("link", name="Operator").click()
        self.heading("Operator")
        page.get_by_label("Kind", exact=True).select_option("privacy")
        page.get_by_label("Version", exact=True).fill("2")
        page.get_by_label("Address of the full text", exact=True).fill(server.url + "/privacy")
        page.get_by_label("Summary of the changes", exact=True).fill("We now keep sign-in records for 30 days.")
        page.get_by_role("button", name="Publish and notify every account").click()
        page.get_by_text("Policy published").wait_for()
        # The screen is drawn anew once the trail shows the publication; only then is the next form there.
        expect(page.locator("table").last).to_contain_text("policy_published")
        page.get_by_label("What happened, what it means, what to do", exact=True).fill(
            "A backup was readable by a contractor for one hour; no action is needed.")
        page.get_by_role("button", name="Send to every account").click()
        expect(page.locator("table").last).to_contain_text("breach_notice_queued")
        page.get_by_text("Breach notice queued").wait_for()
        self.check("console-operator", OWNER_PASSWORD)
        # More than a page of the audit trail (50 entries a page): "More" shows the rest.
        for n in range(49):
            status, _ = server.api("POST", "/api/breach-notices", {"summary": f"Drill {n}: nothing happened.",
                                                                   "scope": "all"}, token)
            self.assertEqual(status, 202)
        page.get_by_role("link", name="Security log").click()
        self.heading("Security log")
        page.get_by_role("link", name="Operator").click()
        self.heading("Operator")
        expect(page.locator("table").last.locator("tbody tr")).to_have_count(50)
        page.get_by_role("button", name="More").click()
        expect(page.locator("table").last.locator("tbody tr")).to_have_count(51)
        expect(page.get_by_role("button", name="More")).to_be_hidden()
        self.check("console-audit-more", OWNER_PASSWORD)

        # A new policy is in force: every screen asks for it until it is accepted.
        page.get_by_role("link", name="Pages").click()
        self.heading("A new policy needs your acceptance")
        self.check("console-policy-required", OWNER_PASSWORD)
        page.get_by_role("button", name="Accept version 2").click()
        page.get_by_text("the new version is accepted").wait_for()
        self.assertEqual(page.get_by_role("heading", name="A new policy needs your acceptance").count(), 0)
        _, me = server.api("GET", "/api/account", token=token)
        self.assertFalse(me["policies"]["acceptance_required"])

        # The account: its export, fetched page by page into one file; the operator cannot delete it (409).
        page.get_by_role("link", name="Account").click()
        self.heading("Account")
        self.no_flash()
        exported = self.download("Export my data")
        sections = [part["section"] for part in exported["parts"]]
        for section in ("account", "security_log", "pages", "leads", "broadcasts"):
            self.assertIn(section, sections)
        self.assertIn(OWNER_EMAIL, json.dumps(exported))
        page.get_by_text(re.compile(r"Done: \d+ parts in one file")).wait_for()
        self.check("console-account-exported", OWNER_PASSWORD)
        page.get_by_role("button", name="Delete my account").click()
        page.get_by_label("Your password", exact=True).fill(OWNER_PASSWORD)
        page.get_by_role("button", name="Adios: delete my account for good").click()
        page.get_by_text("the operator's account cannot be erased").wait_for()
        self.check("console-account-operator-cannot-delete", OWNER_PASSWORD)
        self.assertEqual(server.api("GET", "/api/account", token=token)[0], 200)

        # On a phone: the same screens in one column, still accessible.
        page.set_viewport_size({"width": 390, "height": 844})
        for name, link in [("console-phone-leads", "Leads"), ("console-phone-broadcasts", "Broadcasts"),
                           ("console-phone-account", "Account")]:
            page.get_by_role("link", name=link).click()
            self.heading(link)
            width = page.evaluate("document.documentElement.scrollWidth")
            self.assertLessEqual(width, 390, f"{name}: no sideways scrolling of the page")
            self.check(name, PSID)
        page.set_viewport_size({"width": 1280, "height": 720})

        # Erase one lead, from its consent proof, after a confirm step; the receipt's page follows it.
        page.get_by_role("link", name="Leads").click()
        self.heading("Leads")
        page.get_by_label("Status", exact=True).select_option("pending")
        expect(page.locator("tbody tr")).to_have_count(1)
        page.get_by_role("button", name="Open consent proof").click()
        self.heading("Consent proof")
        page.get_by_role("button", name="Erase this lead").click()
        page.get_by_role("button", name="Keep it").click()
        page.get_by_role("button", name="Erase this lead").click()
        self.check("console-lead-erase-confirm", PSID, SECOND_PSID)
        page.get_by_role("button", name="Yes, erase this lead").click()
        self.heading("Lead being erased")
        self.receipt()
        self.check("console-lead-erased", PSID, SECOND_PSID)
        server.wait_for("the lead's erasure", lambda: len(server.api(
            "GET", f"/api/pages/{PAGE_ID}/leads?status=pending", token=token)[1]["leads"]) == 0)

        # More than a page of leads (50 a page): "More" shows the rest.
        server.many_leads(50)
        server.wait_for("51 leads", lambda: server.api("GET", f"/api/pages/{PAGE_ID}/leads", token=token)[1]
                        ["next_cursor"] is not None)
        page.get_by_role("button", name="Back to leads").click()
        self.heading("Leads")
        page.get_by_label("Status", exact=True).select_option("")
        expect(page.locator("tbody tr")).to_have_count(50)
        _, first = server.api("GET", f"/api/pages/{PAGE_ID}/leads", token=token)
        _, second = server.api("GET", f"/api/pages/{PAGE_ID}/leads?cursor={first['next_cursor']}", token=token)
        self.assertIsNone(second["next_cursor"])
        page.get_by_role("button", name="More").focus()
        page.keyboard.press("Enter")
        expect(page.locator("tbody tr")).to_have_count(50 + len(second["leads"]))
        expect(page.get_by_role("button", name="More")).to_be_hidden()
        self.assertFocusOnRow(50)
        self.check("console-leads-more", PSID, SECOND_PSID)

        # The page's settings: its broadcast rate; then disconnect it, after a confirm step.
        page.get_by_role("link", name="Pages").click()
        self.heading("Pages")
        page.get_by_role("button", name="Settings").click()
        self.heading("Page settings")
        rate = page.get_by_label("Broadcast rate (messages per second)", exact=True)
        self.assertEqual(rate.input_value(), "20")
        rate.fill("40")
        language = page.get_by_label("Language of the page's Messenger messages", exact=True)
        self.assertEqual(language.input_value(), "en")
        language.select_option("de")
        page.get_by_role("button", name="Save settings").click()
        page.get_by_text("at most 40 messages a second; its Messenger messages are in German.").wait_for()
        _, listed = server.api("GET", f"/api/pages/{PAGE_ID}/broadcasts?limit=1", token=token)
        self.assertEqual(listed["broadcast_rate"], 40)
        _, pages = server.api("GET", "/api/pages", token=token)
        self.assertEqual([p["language"] for p in pages["pages"]], ["de"])
        self.check("console-page-settings", OWNER_PASSWORD)
        # What was saved is what the settings show after a reload.
        page.reload()
        self.heading("Pages")
        page.get_by_role("button", name="Settings").click()
        self.heading("Page settings")
        self.assertEqual(page.get_by_label("Language of the page's Messenger messages", exact=True).input_value(), "de")
        self.assertEqual(page.get_by_label("Broadcast rate (messages per second)", exact=True).input_value(), "40")
        page.get_by_role("button", name="Disconnect this page").click()
        self.check("console-page-disconnect-confirm", OWNER_PASSWORD)
        page.get_by_role("button", name="Yes, disconnect and erase its leads").click()
        self.heading("Page disconnected")
        self.receipt()
        self.check("console-page-disconnected", OWNER_PASSWORD)
        page.get_by_role("button", name="Back to pages").click()
        self.heading("Pages")
        self.no_flash()
        page.get_by_text("No page is connected yet.").wait_for()

    def test_another_account_holder_changes_their_details_and_deletes_their_account(self):
        server, page = self.server, self.page
        email, password, new_password = "adios.person@example.com", "amber kites drift past 4 mills", \
            "quiet herons fold 6 maps"
        before = server.newest_mail_link("verify-email")
        version = server.api("GET", "/api/policies/current")[1]["privacy"]["version"]
        status, _ = server.api("POST", "/api/accounts", {"email": email, "password": password,
                                                          "accepted_policy_version": version})
        self.assertEqual(status, 202)
        self.open(server.mail_link("verify-email", other_than=before).removeprefix(server.url), 200)
        page.get_by_role("button").first.click()
        page.wait_for_load_state()
        self.open("/app", 200)
        page.get_by_label("Email", exact=True).fill(email)
        page.get_by_label("Password", exact=True).fill(password)
        page.get_by_role("button", name="Sign in").click()
        self.heading("Pages")
        page.get_by_role("link", name="Account").click()
        self.heading("Account")
        self.no_flash()

        # Name, address (a link to the new address), password (a wrong current one is refused, shown).
        page.get_by_label("Name", exact=True).fill("Bea")
        page.get_by_role("button", name="Save name").click()
        expect(page.locator("#notice")).to_have_text("Name saved.")
        page.locator("dd", has_text="Bea").wait_for()
        page.get_by_label("New address", exact=True).fill("bea.new@example.com")
        page.get_by_role("button", name="Send the link").click()
        page.get_by_text("the address changes when its link is used").wait_for()
        page.get_by_label("Current password", exact=True).fill("not the password at all")
        page.get_by_label("New password", exact=True).fill(new_password)
        page.get_by_role("button", name="Change password").click()
        page.get_by_role("alert").get_by_text("the current password is wrong").wait_for()
        page.get_by_label("Current password", exact=True).fill(password)
        page.get_by_role("button", name="Change password").click()
        page.get_by_text("Password changed; 0 other sessions were signed out.").wait_for()
        self.check("console-account", new_password, "bea.new@example.com")
        self.assertEqual(server.api("POST", "/api/sessions", {"email": email, "password": new_password,
                                                             "remember": False})[0], 200)

        # Forgotten again: the mailed link's page sets a third password (a too-short one is refused
        # there), which signs every device out; the console then signs in with it.
        reset_password = "seven owls count 3 tall pines"
        before = server.newest_mail_link("reset-password")
        page.get_by_role("button", name="Sign out").click()
        self.heading("Sign in")
        page.get_by_role("link", name="Forgot your password?").click()
        # The sign-in page has an Email field too: fill the form only once its page is shown.
        self.heading("Forgot your password")
        page.get_by_label("Email", exact=True).fill(email)
        page.get_by_role("button", name="Send me a reset link").click()
        self.heading("Check your mail")
        self.open(server.mail_link("reset-password", other_than=before).removeprefix(server.url), 200)
        self.heading("Choose a new password")
        self.check("reset-form", email)
        field = page.get_by_label("New password (at least 12 characters)", exact=True)
        field.evaluate("e => e.removeAttribute('minlength')")  # as a script-less client would post it
        field.fill("short one")
        page.get_by_role("button", name="Set the new password").click()
        page.get_by_role("alert").wait_for()
        self.heading("Choose a new password")
        page.get_by_label("New password (at least 12 characters)", exact=True).fill(reset_password)
        page.get_by_role("button", name="Set the new password").click()
        self.heading("Your password is changed")
        self.check("reset-done", reset_password, email)
        self.assertEqual(server.api("POST", "/api/sessions", {"email": email, "password": new_password,
                                                             "remember": False})[0], 401)
        page.get_by_role("link", name="Sign in").click()
        self.heading("Sign in")
        page.get_by_label("Email", exact=True).fill(email)
        page.get_by_label("Password", exact=True).fill(reset_password)
        page.get_by_role("button", name="Sign in").click()
        self.heading("Pages")
        page.get_by_role("link", name="Account").click()
        self.heading("Account")
        new_password = reset_password

        # Adios: a confirm step with the password (a wrong one erases nothing), then the receipt, signed out.
        page.get_by_role("button", name="Delete my account").click()
        page.get_by_role("button", name="Keep it").click()
        page.get_by_role("button", name="Delete my account").click()
        page.get_by_label("Your password", exact=True).fill(password)
        page.get_by_role("button", name="Adios: delete my account for good").click()
        page.get_by_role("alert").get_by_text("the password is wrong").wait_for()
        self.heading("Account")
        self.check("console-account-delete-confirm", new_password)
        page.get_by_label("Your password", exact=True).fill(new_password)
        page.get_by_role("button", name="Adios: delete my account for good").click()
        self.heading("Adios")
        code = self.receipt()
        self.assertTrue(page.locator("#nav").is_hidden())
        self.check("console-account-deleted", new_password, email)
        self.assertEqual([c for c in self.context.cookies() if c["name"] == "qchat_session"], [])
        page.get_by_role("link", name="Follow the erasure on its status page").click()
        page.wait_for_load_state()
        self.assertIn(code, page.content())
        page.goto(server.url + "/app#account")
        self.heading("Sign in")
        self.no_flash()


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
