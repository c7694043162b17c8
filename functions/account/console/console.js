// The qchat console: screens drawn from the JSON API, on the same origin, signed in by the session cookie.
// Every value from the API is put into the page as text (textContent), never parsed as HTML. Every
// state-changing request carries X-Qchat-Csrf: 1, which the server requires of cookie requests. The
// address bar holds only the screen's name, never a personal value.
"use strict";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const notice = document.getElementById("notice");
let account = null;
let followTimer = null;

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

let fieldSeq = 0;
function field(label, attrs, hint) {
  const id = "f" + (++fieldSeq);
  const hintId = hint ? id + "-hint" : null;
  const input = attrs.tag === "select" || attrs.tag === "textarea"
    ? h(attrs.tag, { id, name: attrs.name, required: attrs.required, "aria-describedby": hintId }, attrs.options || [])
    : h("input", { id, "aria-describedby": hintId, ...attrs });
  return [h("label", { for: id }, label), hint ? h("p", { class: "hint", id: hintId }, hint) : null, input];
}

// A message belongs to one screen. `flash` is for the screen an action leads to (it is shown when that screen
// is drawn), `say` for the screen shown now; drawing any later screen removes it.
let pendingFlash = null;
function flash(text) { pendingFlash = text; }
function say(text) { notice.textContent = text; }

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (method !== "GET") headers["X-Qchat-Csrf"] = "1";
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  const data = text ? JSON.parse(text) : null;
  if (!r.ok) {
    const e = (data && data.error) || {};
    throw new ApiError(r.status, e.code || "error", e.message || "The request failed (" + r.status + ").");
  }
  return data;
}

// Runs a form's action, showing its error beside the form (role=alert) instead of losing it.
function submitting(form, action) {
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const out = form.querySelector(".error") || form.appendChild(h("p", { class: "error", role: "alert" }));
    out.textContent = "";
    const button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    try {
      await action(new FormData(form));
    } catch (e) {
      // An ended session sends the person to sign in; a wrong password (also 401) is shown as such.
      if (e instanceof ApiError && e.code === "unauthenticated" && account) { account = null; return go("signin"); }
      out.textContent = e.message;
    } finally {
      if (button) button.disabled = false;
    }
  });
  return form;
}

function screen(title, ...content) {
  if (followTimer) { clearInterval(followTimer); followTimer = null; }
  notice.textContent = pendingFlash || "";
  pendingFlash = null;
  main.replaceChildren(h("h1", {}, title), ...content.filter((c) => c !== null && c !== undefined));
  document.title = title + " — qchat console";
  main.focus();
}

// A wide table scrolls sideways on a phone: its region is focusable so a keyboard can scroll it too.
function table(headers, rows) {
  return h("div", { class: "table", tabindex: "0", role: "region", "aria-label": headers.join(", ") }, h("table", {},
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c)))))));
}

// A list the API pages with a cursor: the first page, and "More" while the API has a next_cursor, which
// adds the next page's rows below. `load(cursor)` answers { items, next }.
function pagedTable(headers, first, load, row) {
  const wrap = table(headers, first.items.map(row));
  const body = wrap.querySelector("tbody");
  const status = h("p", { class: "hint", role: "status" });
  let next = first.next;
  const more = h("button", { type: "button", class: "secondary", hidden: !next }, "More");
  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      const page = await load(next);
      const added = page.items.map(row).map((r) => h("tr", {}, r.map((c) => h("td", {}, c))));
      body.append(...added);
      next = page.next;
      more.hidden = !next;
      status.textContent = body.rows.length + " shown" + (next ? "; more are available." : "; that is all.");
      // A hidden button cannot keep the focus: the reader goes on at the first row it added (or at the
      // count, if the page was empty), where reading would continue anyway.
      if (!next) {
        const target = added[0] || status;
        target.setAttribute("tabindex", "-1");
        target.focus();
      }
    } catch (e) {
      status.textContent = e.message;
    } finally {
      more.disabled = false;
    }
  });
  return h("div", {}, wrap, more, status);
}

function withCursor(path, cursor) {
  if (!cursor) return path;
  return path + (path.includes("?") ? "&" : "?") + "cursor=" + encodeURIComponent(cursor);
}

// Offers `data` as a JSON file download; the file is made in the browser, nothing is sent anywhere.
function download(filename, data) {
  const url = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: "application/json" }));
  const a = h("a", { href: url, download: filename, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

// An erasure's receipt as the API answers it: the code to quote and the public page that follows it.
function receipt(erasure) {
  return h("div", { class: "panel" },
    h("p", {}, "Confirmation code: ", h("strong", { class: "code" }, erasure.confirmation_code)),
    h("p", {}, h("a", { href: erasure.status_url }, "Follow the erasure on its status page")));
}

// A dangerous action takes two clicks: the first shows what it does and the button that does it.
function confirmStep(label, explain, confirmLabel, action) {
  const out = h("p", { class: "error", role: "alert" });
  const yes = h("button", { type: "button", class: "danger" }, confirmLabel);
  const no = h("button", { type: "button", class: "secondary" }, "Keep it");
  const box = h("div", { class: "panel", hidden: true }, h("p", {}, explain), yes, no, out);
  const open = h("button", { type: "button", class: "danger" }, label);
  open.addEventListener("click", () => { box.hidden = false; open.hidden = true; yes.focus(); });
  no.addEventListener("click", () => { box.hidden = true; open.hidden = false; open.focus(); });
  yes.addEventListener("click", async () => {
    yes.disabled = true;
    out.textContent = "";
    try { await action(); } catch (e) {
      if (e instanceof ApiError && e.code === "unauthenticated") { account = null; return go("signin"); }
      out.textContent = e.message;
    } finally { yes.disabled = false; }
  });
  return h("div", {}, open, box);
}

function sentence(text) { return text.charAt(0).toUpperCase() + text.slice(1) + "."; }

function when(iso) { return iso ? new Date(iso).toLocaleString() : "—"; }

// ---- signed out ------------------------------------------------------------------------------------

function signIn() {
  screen("Sign in",
    submitting(h("form", { "aria-label": "Sign in" },
      field("Email", { type: "email", name: "email", autocomplete: "username", required: true }),
      field("Password", { type: "password", name: "password", autocomplete: "current-password", required: true }),
      h("label", { class: "check" }, h("input", { type: "checkbox", name: "remember" }), "Keep me signed in for 30 days"),
      h("p", { class: "hint" }, "Off: you are signed out when the browser closes (and after 12 hours at most)."),
      h("button", { type: "submit" }, "Sign in")),
    async (f) => {
      await api("POST", "/api/sessions", { email: f.get("email"), password: f.get("password"), remember: f.get("remember") === "on" });
      flash("Signed in.");
      await start("pages");
    }),
    h("p", {}, h("a", { href: "#signup" }, "Create an account"), " · ", h("a", { href: "#forgot" }, "Forgot your password?")));
}

async function signUp() {
  const policies = await api("GET", "/api/policies/current");
  const p = policies.privacy, t = policies.terms;
  screen("Create an account",
    submitting(h("form", { "aria-label": "Create an account" },
      field("Email", { type: "email", name: "email", autocomplete: "email", required: true }),
      field("Password", { type: "password", name: "password", autocomplete: "new-password", required: true, minlength: "12" },
        "At least 12 characters; a common password is refused."),
      field("Name (optional)", { type: "text", name: "name", autocomplete: "name" }),
      h("h2", {}, "Privacy policy and terms"),
      h("div", { class: "panel" },
        h("p", {}, h("strong", {}, "Privacy policy, version " + p.version + ": "), p.summary),
        h("p", {}, h("a", { href: p.url }, "Read the privacy policy")),
        h("p", {}, h("strong", {}, "Terms, version " + t.version + ": "), t.summary),
        h("p", {}, h("a", { href: t.url }, "Read the terms"))),
      h("label", { class: "check" }, h("input", { type: "checkbox", name: "accept", required: true }),
        "I accept the privacy policy (version " + p.version + ") and the terms (version " + t.version + ")"),
      h("button", { type: "submit" }, "Create account")),
    async (f) => {
      const body = { email: f.get("email"), password: f.get("password"), accepted_policy_version: p.version };
      if (f.get("name")) body.name = f.get("name");
      await api("POST", "/api/accounts", body);
      screen("Check your mail",
        h("p", {}, "We sent a link to the address you gave. Open it to confirm the address and create the account, then sign in."),
        h("p", {}, h("a", { href: "#signin" }, "Sign in")));
    }),
    h("p", {}, h("a", { href: "#signin" }, "I already have an account")));
}

function forgot() {
  screen("Forgot your password",
    submitting(h("form", { "aria-label": "Request a password reset" },
      field("Email", { type: "email", name: "email", autocomplete: "email", required: true }),
      h("button", { type: "submit" }, "Send me a reset link")),
    async (f) => {
      await api("POST", "/api/password-resets", { email: f.get("email") });
      screen("Check your mail",
        h("p", {}, "If an account uses that address, a link to choose a new password is on its way. The link works once, for a limited time."),
        h("p", {}, h("a", { href: "#signin" }, "Back to sign in")));
    }),
    h("p", {}, h("a", { href: "#signin" }, "Back to sign in")));
}

// ---- signed in -------------------------------------------------------------------------------------

const SCREENS = [["pages", "Pages"], ["leads", "Leads"], ["broadcasts", "Broadcasts"], ["security", "Security log"],
  ["account", "Account"]];

function drawNav(current) {
  const items = account.role === "operator" ? [...SCREENS, ["operator", "Operator"]] : SCREENS;
  nav.replaceChildren(
    ...items.map(([id, label]) => h("a", { href: "#" + id, "aria-current": id === current ? "page" : null }, label)),
    h("button", { type: "button", onclick: signOut }, "Sign out"));
  nav.hidden = false;
}

async function signOut() {
  try { await api("DELETE", "/api/sessions/current"); } catch (e) { /* already signed out */ }
  account = null;
  nav.hidden = true;
  flash("Signed out.");
  go("signin");
}

function policyBanner() {
  const pol = account.policies;
  if (!pol.acceptance_required) return null;
  const kinds = ["privacy", "terms"].filter((k) => pol[k].accepted_version !== pol[k].current_version);
  const box = h("section", { class: "banner", "aria-labelledby": "policy-h" },
    h("h2", { id: "policy-h" }, "A new policy needs your acceptance"),
    kinds.map((k) => h("p", {}, (k === "privacy" ? "Privacy policy" : "Terms") + ": version " + pol[k].current_version +
      " replaces the version you accepted (" + (pol[k].accepted_version || "none") + ").")),
    h("p", { id: "policy-texts" }),
    submitting(h("form", { "aria-label": "Accept the new policy" },
      h("button", { type: "submit" }, "Accept version " + kinds.map((k) => pol[k].current_version).join(" and "))),
    async () => {
      for (const k of kinds) await api("POST", "/api/account/policy-acceptance", { kind: k, version: pol[k].current_version });
      account = await api("GET", "/api/account");
      flash("Thank you: the new version is accepted.");
      route();
    }));
  api("GET", "/api/policies/current").then((cur) => {
    box.querySelector("#policy-texts").replaceChildren(...kinds.map((k) =>
      h("span", {}, cur[k].summary + " ", h("a", { href: cur[k].url }, "Read it"), " ")));
  }).catch(() => {});
  return box;
}

async function pagesScreen() {
  const { pages } = await api("GET", "/api/pages");
  screen("Pages", policyBanner(),
    pages.length === 0 ? h("p", {}, "No page is connected yet.") :
      table(["Page", "Id", "Sending", "Settings", "Replace its token"], pages.map((p) => [
        p.name || "(no name)", p.page_id,
        p.sending === "stopped" ? "stopped: " + (p.stopped_reason || "unknown") : (p.sending || "active"),
        h("button", { type: "button", class: "secondary", onclick: () => pageSettings(p) }, "Settings"),
        submitting(h("form", { "aria-label": "Replace the token of " + (p.name || p.page_id), class: "inline" },
          field("New page access token", { type: "password", name: "token", required: true, autocomplete: "off" }),
          h("button", { type: "submit", class: "secondary" }, "Replace token")),
        async (f) => {
          const r = await api("PUT", "/api/pages/" + encodeURIComponent(p.page_id) + "/access-token", { page_access_token: f.get("token") });
          // The server's note says whether sending resumed or stays stopped.
          flash(r && r.message ? sentence(r.message) : "Token replaced.");
          await pagesScreen();
        })])),
    h("h2", {}, "Connect a page"),
    submitting(h("form", { "aria-label": "Connect a page" },
      field("Page id", { type: "text", name: "page_id", inputmode: "numeric", required: true }, "The Facebook page's numeric id."),
      field("Page access token", { type: "password", name: "token", required: true, autocomplete: "off" },
        "Stored encrypted; never shown again."),
      field("Name (optional)", { type: "text", name: "name" }),
      h("button", { type: "submit" }, "Connect")),
    async (f) => {
      const body = { page_id: f.get("page_id"), page_access_token: f.get("token") };
      if (f.get("name")) body.name = f.get("name");
      await api("POST", "/api/pages", body);
      flash("Page connected.");
      await pagesScreen();
    }));
}

// The languages qchat writes a page's Messenger texts in (the API's codes), each named in English and in
// itself, so the account holder finds the language whichever of the two they know it by.
const LANGUAGES = [["en", "English"], ["de", "German (Deutsch)"], ["fr", "French (Français)"],
  ["es", "Spanish (Español)"], ["it", "Italian (Italiano)"], ["nl", "Dutch (Nederlands)"],
  ["pl", "Polish (Polski)"], ["pt", "Portuguese (Português)"]];

function languageName(code) {
  const found = LANGUAGES.find(([c]) => c === code);
  return found ? found[1] : code;
}

async function pageSettings(p) {
  const base = "/api/pages/" + encodeURIComponent(p.page_id);
  const { broadcast_rate: rate } = await api("GET", base + "/broadcasts?limit=1");
  // The page as listed now, not as it was when the pages screen was drawn (its language may have changed).
  const { pages } = await api("GET", "/api/pages");
  const current = pages.find((x) => x.page_id === p.page_id) || p;
  screen("Page settings",
    h("dl", {}, h("dt", {}, "Page"), h("dd", {}, p.name || "(no name)"), h("dt", {}, "Id"), h("dd", {}, p.page_id)),
    submitting(h("form", { "aria-label": "Page settings" },
      field("Broadcast rate (messages per second)", { type: "number", name: "broadcast_rate", min: "1", max: "250",
        step: "1", required: true, value: String(rate) },
        "How many messages a second this page's broadcasts send together, 1 to 250."),
      field("Language of the page's Messenger messages", { tag: "select", name: "language", required: true,
        options: LANGUAGES.map(([code, name]) => h("option", { value: code, selected: code === (current.language || "en") }, name)) },
        "qchat's own messages to the people who write to this page (the consent question, confirmations, " +
        "replies to STOP, MY DATA and DELETE MY DATA) are in this language."),
      h("button", { type: "submit" }, "Save settings")),
    async (f) => {
      const r = await api("PATCH", base, { broadcast_rate: Number(f.get("broadcast_rate")), language: f.get("language") });
      say("Saved: this page's broadcasts send at most " + r.broadcast_rate + " messages a second; its Messenger " +
        "messages are in " + languageName(r.language).replace(/ \(.*\)$/, "") + ".");
    }),
    h("h2", {}, "Disconnect the page"),
    h("p", {}, "The page is removed from qchat with its token; its leads (with their consent records) and its " +
      "broadcasts are erased. This cannot be undone."),
    confirmStep("Disconnect this page", "Disconnect " + (p.name || p.page_id) + " and erase all its leads?",
      "Yes, disconnect and erase its leads", async () => {
        const r = await api("DELETE", base);
        screen("Page disconnected",
          h("p", {}, "The page is disconnected. Its leads are being erased; keep the code to show the erasure was asked for."),
          receipt(r.erasure),
          h("button", { type: "button", class: "secondary", onclick: pagesScreen }, "Back to pages"));
      }),
    h("p", {}, h("button", { type: "button", class: "secondary", onclick: pagesScreen }, "Back to pages")));
}

// A page picker shared by the leads and broadcasts screens; remembers the choice in memory only.
let chosenPage = null;
async function pagePicker(onChange) {
  const { pages } = await api("GET", "/api/pages");
  if (pages.length === 0) return { pages, el: h("p", {}, "Connect a page first (Pages).") };
  if (!pages.some((p) => p.page_id === chosenPage)) chosenPage = pages[0].page_id;
  const [label, , select] = field("Page", { tag: "select", name: "page",
    options: pages.map((p) => h("option", { value: p.page_id, selected: p.page_id === chosenPage }, p.name || p.page_id)) });
  select.addEventListener("change", () => { chosenPage = select.value; onChange(); });
  return { pages, el: h("div", {}, label, select) };
}

const STATUSES = [["", "All"], ["pending", "Pending confirmation"], ["subscribed", "Subscribed"],
  ["unsubscribed", "Unsubscribed"], ["unreachable", "Unreachable"]];
let leadStatus = "";

async function leadsScreen() {
  const picker = await pagePicker(leadsScreen);
  if (picker.pages.length === 0) return screen("Leads", policyBanner(), picker.el);
  const path = "/api/pages/" + encodeURIComponent(chosenPage) + "/leads" +
    (leadStatus ? "?status=" + encodeURIComponent(leadStatus) : "");
  const load = async (cursor) => {
    const r = await api("GET", withCursor(path, cursor));
    return { items: r.leads, next: r.next_cursor };
  };
  const first = await load(null);
  const [label, , select] = field("Status", { tag: "select", name: "status",
    options: STATUSES.map(([v, t]) => h("option", { value: v, selected: v === leadStatus }, t)) });
  select.addEventListener("change", () => { leadStatus = select.value; leadsScreen(); });
  screen("Leads", policyBanner(), h("div", { class: "panel" }, picker.el, label, select),
    first.items.length === 0 ? h("p", {}, "No lead with this status.") :
      pagedTable(["Lead", "Status", "Since", "Last message", "Consent proof"], first, load, (l) => [
        l.id, l.status, when(l.created_at), when(l.last_message_at),
        h("button", { type: "button", class: "secondary", onclick: () => leadDetail(l.id) }, "Open consent proof")]));
}

async function leadDetail(id) {
  const path = "/api/pages/" + encodeURIComponent(chosenPage) + "/leads/" + encodeURIComponent(id);
  const d = await api("GET", path);
  const chain = d.chain || {};
  const verdict = chain.intact
    ? h("p", { class: "verdict good" }, "✔ Consent proof verified: the chain of " + d.consent_history.length + " records is intact.")
    : h("p", { class: "verdict bad" }, "✘ Consent proof broken at record " + chain.broken_at + ": " + chain.reason + ".");
  screen("Consent proof", verdict,
    h("dl", {}, h("dt", {}, "Lead"), h("dd", {}, id), h("dt", {}, "Status"), h("dd", {}, (d.lead || d).status || "—")),
    table(["#", "Action", "Source", "Received", "Policy", "Mode", "Wording", "Hash"], d.consent_history.map((r) => [
      r.seq, r.action, r.source, when(r.received_at), r.policy_version, r.consent_mode, r.wording || "—",
      h("span", { class: "hash" }, r.hash)])),
    h("h2", {}, "Access and erasure"),
    h("p", {}, "When the person asks for their data, or asks to be forgotten, do it here."),
    h("button", { type: "button", class: "secondary", onclick: async (ev) => {
      const out = ev.target.parentNode.querySelector("#lead-export-status");
      try {
        download("qchat-lead-" + id + ".json", await api("GET", path + "/export"));
        out.textContent = "The lead's data is downloaded as a JSON file.";
      } catch (e) { out.textContent = e.message; }
    } }, "Download this lead's data"),
    h("p", { id: "lead-export-status", role: "status" }),
    confirmStep("Erase this lead", "Erase everything held about this lead: the lead, its consent records, its " +
      "unsubscribe link, its replies and its broadcast deliveries. This cannot be undone.",
    "Yes, erase this lead", async () => {
      const r = await api("DELETE", path);
      screen("Lead being erased",
        h("p", {}, "The lead is being erased. Keep the code: it shows the erasure was asked for and when it is done."),
        receipt(r.erasure),
        h("button", { type: "button", class: "secondary", onclick: leadsScreen }, "Back to leads"));
    }),
    h("p", {}, h("button", { type: "button", class: "secondary", onclick: leadsScreen }, "Back to leads")));
}

function countsTable(counts, byReason) {
  const rows = [];
  for (const [k, v] of Object.entries(counts || {})) {
    if (v && typeof v === "object") {
      for (const [reason, n] of Object.entries(v)) rows.push([k + ": " + reason.replace(/_/g, " "), n]);
    } else rows.push([k.replace(/_/g, " "), v]);
  }
  return rows.length ? table([byReason ? "Reason" : "Outcome", "Count"], rows) : h("p", {}, "None.");
}

async function broadcastsScreen() {
  const picker = await pagePicker(broadcastsScreen);
  if (picker.pages.length === 0) return screen("Broadcasts", policyBanner(), picker.el);
  const base = "/api/pages/" + encodeURIComponent(chosenPage) + "/broadcasts";
  const load = async (cursor) => {
    const r = await api("GET", withCursor(base, cursor));
    return { items: r.broadcasts, next: r.next_cursor };
  };
  const first = await load(null);
  const previewOut = h("div", { id: "preview", "aria-live": "polite" });
  const buttons = [1, 2, 3].map((n) => h("fieldset", {}, h("legend", {}, "Button " + n + " (optional)"),
    field("Button " + n + " title", { type: "text", name: "button_title_" + n, maxlength: "20" }),
    field("Button " + n + " address", { type: "url", name: "button_url_" + n, placeholder: "https://" })));
  const form = h("form", { "aria-label": "Compose a broadcast" },
    field("Message", { tag: "textarea", name: "text", required: true }, "Sent as written; an Unsubscribe button is added."),
    field("Send at (optional)", { type: "datetime-local", name: "send_at" }, "Empty: send now. Your local time."),
    h("h2", {}, "Link buttons"),
    h("p", { class: "hint" }, "Up to 3 buttons that open an https address; each needs a title and an address."),
    buttons,
    h("h2", {}, "Audience"),
    field("Only people who came through these opt-in refs (optional)", { type: "text", name: "refs" },
      "The refs of your m.me links or plugins, separated by commas. Empty: everyone subscribed."),
    field("Only people subscribed since (optional)", { type: "datetime-local", name: "subscribed_since" }, "Your local time."),
    h("button", { type: "button", class: "secondary", onclick: async () => {
      try {
        const p = await api("POST", base + "/preview", audienceOf(new FormData(form)));
        previewOut.replaceChildren(h("h2", {}, "Preview"),
          h("p", {}, p.eligible + " would get it now (" + p.via_update + " inside 24 hours, " + p.via_token + " by marketing token)."),
          h("p", {}, "Would not get it, by reason:"), countsTable(p.by_reason, true));
      } catch (e) { previewOut.replaceChildren(h("p", { class: "error", role: "alert" }, e.message)); }
    } }, "Preview"),
    h("button", { type: "submit" }, "Schedule"));
  screen("Broadcasts", policyBanner(), h("div", { class: "panel" }, picker.el),
    h("h2", {}, "Compose"),
    submitting(form, async (f) => {
      const body = { text: f.get("text"), ...audienceOf(f) };
      if (f.get("send_at")) body.send_at = new Date(f.get("send_at")).toISOString();
      const chosen = [1, 2, 3].map((n) => ({ title: f.get("button_title_" + n).trim(), url: f.get("button_url_" + n).trim() }))
        .filter((b) => b.title || b.url);
      if (chosen.length) body.buttons = chosen;
      const b = await api("POST", base, body);
      flash("Broadcast scheduled.");
      await follow(b.id);
    }), previewOut,
    h("h2", {}, "Sent and scheduled"),
    first.items.length === 0 ? h("p", {}, "No broadcast yet.") :
      pagedTable(["Message", "State", "Send at", ""], first, load, (b) => [
        b.text, b.state, when(b.send_at),
        h("button", { type: "button", class: "secondary", onclick: () => follow(b.id) }, "Follow")]));
}

// The audience fields as the API takes them: { audience: { refs, subscribed_since } }, or nothing for everyone.
function audienceOf(f) {
  const audience = {};
  const refs = (f.get("refs") || "").split(",").map((r) => r.trim()).filter((r) => r);
  if (refs.length) audience.refs = refs;
  if (f.get("subscribed_since")) audience.subscribed_since = new Date(f.get("subscribed_since")).toISOString();
  return Object.keys(audience).length ? { audience } : {};
}

const LIVE = ["scheduled", "sending", "paused"];
async function follow(id) {
  const path = "/api/pages/" + encodeURIComponent(chosenPage) + "/broadcasts/" + encodeURIComponent(id);
  const state = h("p", { id: "state" });
  const counts = h("div", { id: "counts" });
  const cancel = h("button", { type: "button", class: "danger", onclick: async () => {
    try {
      await api("POST", path + "/cancel");
      say("Broadcast cancelled.");
      await refresh();
    } catch (e) { say(e.message); }
  } }, "Cancel broadcast");
  const b0 = await api("GET", path);
  const aud = b0.audience || {};
  screen("Broadcast", h("div", { class: "panel" }, h("p", {}, b0.text),
    (b0.buttons || []).length ? h("ul", { "aria-label": "Buttons" }, b0.buttons.map((x) => h("li", {}, x.title + " → " + x.url))) : null,
    h("p", {}, "Send at: " + when(b0.send_at)),
    h("p", {}, "Audience: " + ((aud.refs || []).length ? "refs " + aud.refs.join(", ") : "every subscribed lead") +
      (aud.subscribed_since ? ", subscribed since " + when(aud.subscribed_since) : ""))),
    h("div", { "aria-live": "polite" }, state, h("h2", {}, "Counts"), counts), cancel,
    h("button", { type: "button", class: "secondary", onclick: broadcastsScreen }, "Back to broadcasts"));
  async function refresh() {
    const b = await api("GET", path);
    state.textContent = "State: " + b.state + (b.pause_reason ? " (" + b.pause_reason + ")" : "") +
      (LIVE.includes(b.state) ? " — updating every 2 seconds" : "");
    counts.replaceChildren(countsTable(b.counts, false));
    cancel.hidden = !LIVE.includes(b.state);
    if (!LIVE.includes(b.state) && followTimer) { clearInterval(followTimer); followTimer = null; }
  }
  await refresh();
  followTimer = setInterval(() => refresh().catch(() => {}), 2000);
}

async function securityScreen() {
  const load = async (cursor) => {
    const r = await api("GET", withCursor("/api/account/security-log?limit=50", cursor));
    return { items: r.events, next: r.next_cursor };
  };
  const first = await load(null);
  screen("Security log", policyBanner(),
    h("p", {}, "Sign-ins and other security events of your account, newest first, with the network they came from."),
    first.items.length === 0 ? h("p", {}, "Nothing yet.") :
      pagedTable(["When", "Event", "Network"], first, load, (e) => [when(e.at), e.event.replace(/_/g, " "), e.network || "—"]),
    submitting(h("form", { "aria-label": "Sign out everywhere" },
      h("button", { type: "submit", class: "danger" }, "Sign out on every device")),
    async () => {
      await api("DELETE", "/api/sessions");
      account = null; nav.hidden = true; flash("Signed out everywhere."); go("signin");
    }));
}

// The account itself: name, address, password; the export of everything held about it; its erasure.
async function accountScreen() {
  account = await api("GET", "/api/account");
  const exportOut = h("p", { id: "export-status", role: "status" });
  const progress = h("progress", { "aria-label": "Export progress", hidden: true });
  screen("Account", policyBanner(),
    h("dl", {}, h("dt", {}, "Address"), h("dd", {}, account.email), h("dt", {}, "Name"), h("dd", {}, account.name || "—"),
      h("dt", {}, "Role"), h("dd", {}, account.role === "operator" ? "operator" : "account holder"),
      h("dt", {}, "Since"), h("dd", {}, when(account.created_at))),
    h("h2", {}, "Name"),
    submitting(h("form", { "aria-label": "Change the name" },
      field("Name", { type: "text", name: "name", autocomplete: "name", required: true, value: account.name || "" }),
      h("button", { type: "submit" }, "Save name")),
    async (f) => {
      await api("PATCH", "/api/account", { name: f.get("name") });
      flash("Name saved.");
      await accountScreen();
    }),
    h("h2", {}, "Address"),
    submitting(h("form", { "aria-label": "Change the address" },
      field("New address", { type: "email", name: "email", autocomplete: "email", required: true },
        "We send a link to the new address; it changes when the link is used (within 24 hours)."),
      h("button", { type: "submit" }, "Send the link")),
    async (f) => {
      await api("PATCH", "/api/account", { email: f.get("email") });
      flash("Check the new address's mail: the address changes when its link is used.");
      await accountScreen();
    }),
    h("h2", {}, "Password"),
    submitting(h("form", { "aria-label": "Change the password" },
      field("Current password", { type: "password", name: "current_password", autocomplete: "current-password", required: true }),
      field("New password", { type: "password", name: "new_password", autocomplete: "new-password", required: true, minlength: "12" },
        "At least 12 characters; a common password is refused. Your other devices are signed out."),
      h("button", { type: "submit" }, "Change password")),
    async (f) => {
      const r = await api("POST", "/api/account/password",
        { current_password: f.get("current_password"), new_password: f.get("new_password") });
      flash("Password changed; " + r.other_sessions_ended + " other session" + (r.other_sessions_ended === 1 ? " was" : "s were") + " signed out.");
      await accountScreen();
    }),
    h("h2", {}, "Your data"),
    h("p", {}, "Everything qchat holds about your account, its pages, leads and broadcasts, in one JSON file."),
    h("button", { type: "button", class: "secondary", onclick: async (ev) => {
      const button = ev.currentTarget;
      button.disabled = true;
      progress.hidden = false;
      try {
        const parts = [];
        let cursor = null;
        do {
          const part = await api("GET", withCursor("/api/account/export", cursor));
          parts.push(part);
          exportOut.textContent = "Fetched " + parts.length + " part" + (parts.length === 1 ? "" : "s") +
            " (now at: " + String(part.section).replace(/_/g, " ") + ")…";
          cursor = part.next_cursor;
        } while (cursor);
        const exportedAt = new Date().toISOString();
        download("qchat-account-export-" + exportedAt.slice(0, 10) + ".json", {
          schema_version: parts[0].schema_version, exported_at: exportedAt,
          parts: parts.map(({ next_cursor: _, ...rest }) => rest) });
        exportOut.textContent = "Done: " + parts.length + " part" + (parts.length === 1 ? "" : "s") + " in one file.";
      } catch (e) {
        exportOut.textContent = "The export stopped: " + e.message;
      } finally {
        button.disabled = false;
        progress.hidden = true;
      }
    } }, "Export my data"), progress, exportOut,
    h("h2", {}, "Delete the account"),
    h("p", {}, "Adios: your account, its pages, their leads and broadcasts are erased. You are signed out everywhere " +
      "and get a confirmation code. This cannot be undone."),
    deleteAccountStep());
}

function deleteAccountStep() {
  const form = submitting(h("form", { "aria-label": "Delete the account", hidden: true },
    field("Your password", { type: "password", name: "password", autocomplete: "current-password", required: true },
      "To be sure it is you."),
    h("button", { type: "submit", class: "danger" }, "Adios: delete my account for good"),
    h("button", { type: "button", class: "secondary", onclick: () => { form.hidden = true; open.hidden = false; open.focus(); } }, "Keep it")),
  async (f) => {
    const r = await api("DELETE", "/api/account", { password: f.get("password") });
    account = null;
    nav.hidden = true;
    screen("Adios",
      h("p", {}, "Your account is being deleted and you are signed out. The confirmation goes to your address too."),
      receipt(r.erasure),
      h("p", {}, h("a", { href: "#signin" }, "Sign in"), " · ", h("a", { href: "#signup" }, "Create an account")));
  });
  const open = h("button", { type: "button", class: "danger", onclick: () => {
    form.hidden = false; open.hidden = true; form.querySelector("input").focus();
  } }, "Delete my account");
  return h("div", {}, open, form);
}

async function operatorScreen() {
  const load = async (cursor) => {
    const r = await api("GET", withCursor("/api/operator/audit-log", cursor));
    return { items: r.entries, next: r.next_cursor };
  };
  const first = await load(null);
  screen("Operator", policyBanner(),
    h("h2", {}, "Publish a policy"),
    submitting(h("form", { "aria-label": "Publish a policy" },
      field("Kind", { tag: "select", name: "kind", options: [h("option", { value: "privacy" }, "Privacy policy"), h("option", { value: "terms" }, "Terms")] }),
      field("Version", { type: "text", name: "version", required: true }),
      field("Address of the full text", { type: "url", name: "url", required: true }),
      field("Summary of the changes", { tag: "textarea", name: "summary", required: true }),
      h("button", { type: "submit" }, "Publish and notify every account")),
    async (f) => {
      await api("POST", "/api/policies", { kind: f.get("kind"), version: f.get("version"), url: f.get("url"), summary: f.get("summary") });
      account = await api("GET", "/api/account");
      flash("Policy published; every account is being notified.");
      await operatorScreen();
    }),
    h("h2", {}, "Send a breach notice"),
    submitting(h("form", { "aria-label": "Send a breach notice" },
      field("What happened, what it means, what to do", { tag: "textarea", name: "summary", required: true }),
      h("p", { class: "hint" }, "Sent by email to every account."),
      h("button", { type: "submit", class: "danger" }, "Send to every account")),
    async (f) => {
      await api("POST", "/api/breach-notices", { summary: f.get("summary"), scope: "all" });
      flash("Breach notice queued for every account.");
      await operatorScreen();
    }),
    h("h2", {}, "Audit trail"),
    first.items.length === 0 ? h("p", {}, "Nothing yet.") :
      pagedTable(["When", "Action", "By", "Details"], first, load, (e) => [when(e.at), e.action, e.actor || "—",
        e.subject ? JSON.stringify(e.subject) : "—"]));
}

// ---- routing ---------------------------------------------------------------------------------------

const SIGNED_IN = { account: accountScreen, pages: pagesScreen, leads: leadsScreen, broadcasts: broadcastsScreen, security: securityScreen, operator: operatorScreen };
const SIGNED_OUT = { signin: signIn, signup: signUp, forgot };

async function route() {
  const name = location.hash.slice(1);
  try {
    if (account) {
      const draw = SIGNED_IN[name] || pagesScreen;
      drawNav(SIGNED_IN[name] ? name : "pages");
      await draw();
    } else {
      nav.hidden = true;
      await (SIGNED_OUT[name] || signIn)();
    }
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) { account = null; nav.hidden = true; return signIn(); }
    screen("Something went wrong", h("p", { class: "error", role: "alert" }, e.message));
  }
}

function go(name) {
  if (location.hash === "#" + name) route(); else location.hash = "#" + name;
}

async function start(name) {
  account = await api("GET", "/api/account");
  go(name);
}

window.addEventListener("hashchange", route);
api("GET", "/api/account").then((a) => { account = a; }, () => { account = null; }).then(route);
