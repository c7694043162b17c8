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
      // A 401 while signed in means the session ended; before that it is a wrong password, shown as such.
      if (e instanceof ApiError && e.status === 401 && account) { account = null; return go("signin"); }
      out.textContent = e.message;
    } finally {
      if (button) button.disabled = false;
    }
  });
  return form;
}

function screen(title, ...content) {
  if (followTimer) { clearInterval(followTimer); followTimer = null; }
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
      say("Signed in.");
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

const SCREENS = [["pages", "Pages"], ["leads", "Leads"], ["broadcasts", "Broadcasts"], ["security", "Security log"]];

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
  say("Signed out.");
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
      say("Thank you: the new version is accepted.");
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
      table(["Page", "Id", "Sending", "Replace its token"], pages.map((p) => [
        p.name || "(no name)", p.page_id,
        p.sending === "stopped" ? "stopped: " + (p.stopped_reason || "unknown") : (p.sending || "active"),
        submitting(h("form", { "aria-label": "Replace the token of " + (p.name || p.page_id), class: "inline" },
          field("New page access token", { type: "password", name: "token", required: true, autocomplete: "off" }),
          h("button", { type: "submit", class: "secondary" }, "Replace token")),
        async (f) => {
          const r = await api("PUT", "/api/pages/" + encodeURIComponent(p.page_id) + "/access-token", { page_access_token: f.get("token") });
          // The server says more only when replacing the token resumed a stopped page.
          say("Token replaced." + (r && r.sending_resumed !== undefined && r.message ? " " + r.message : ""));
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
      say("Page connected.");
      await pagesScreen();
    }));
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
  const q = leadStatus ? "?status=" + encodeURIComponent(leadStatus) : "";
  const { leads } = await api("GET", "/api/pages/" + encodeURIComponent(chosenPage) + "/leads" + q);
  const [label, , select] = field("Status", { tag: "select", name: "status",
    options: STATUSES.map(([v, t]) => h("option", { value: v, selected: v === leadStatus }, t)) });
  select.addEventListener("change", () => { leadStatus = select.value; leadsScreen(); });
  screen("Leads", policyBanner(), h("div", { class: "panel" }, picker.el, label, select),
    leads.length === 0 ? h("p", {}, "No lead with this status.") :
      table(["Lead", "Status", "Since", "Last message", "Consent proof"], leads.map((l) => [
        l.id, l.status, when(l.created_at), when(l.last_message_at),
        h("button", { type: "button", class: "secondary", onclick: () => leadDetail(l.id) }, "Open consent proof")])));
}

async function leadDetail(id) {
  const d = await api("GET", "/api/pages/" + encodeURIComponent(chosenPage) + "/leads/" + encodeURIComponent(id));
  const chain = d.chain || {};
  const verdict = chain.intact
    ? h("p", { class: "verdict good" }, "✔ Consent proof verified: the chain of " + d.consent_history.length + " records is intact.")
    : h("p", { class: "verdict bad" }, "✘ Consent proof broken at record " + chain.broken_at + ": " + chain.reason + ".");
  screen("Consent proof", verdict,
    h("dl", {}, h("dt", {}, "Lead"), h("dd", {}, id), h("dt", {}, "Status"), h("dd", {}, (d.lead || d).status || "—")),
    table(["#", "Action", "Source", "Received", "Policy", "Mode", "Wording", "Hash"], d.consent_history.map((r) => [
      r.seq, r.action, r.source, when(r.received_at), r.policy_version, r.consent_mode, r.wording || "—",
      h("span", { class: "hash" }, r.hash)])),
    h("button", { type: "button", class: "secondary", onclick: leadsScreen }, "Back to leads"));
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
  const { broadcasts } = await api("GET", base);
  const previewOut = h("div", { id: "preview", "aria-live": "polite" });
  const form = h("form", { "aria-label": "Compose a broadcast" },
    field("Message", { tag: "textarea", name: "text", required: true }, "Sent as written; an Unsubscribe button is added."),
    field("Send at (optional)", { type: "datetime-local", name: "send_at" }, "Empty: send now. Your local time."),
    h("button", { type: "button", class: "secondary", onclick: async () => {
      try {
        const p = await api("POST", base + "/preview", {});
        previewOut.replaceChildren(h("h2", {}, "Preview"),
          h("p", {}, p.eligible + " would get it now (" + p.via_update + " inside 24 hours, " + p.via_token + " by marketing token)."),
          h("p", {}, "Would not get it, by reason:"), countsTable(p.by_reason, true));
      } catch (e) { previewOut.replaceChildren(h("p", { class: "error", role: "alert" }, e.message)); }
    } }, "Preview"),
    h("button", { type: "submit" }, "Schedule"));
  screen("Broadcasts", policyBanner(), h("div", { class: "panel" }, picker.el),
    h("h2", {}, "Compose"),
    submitting(form, async (f) => {
      const body = { text: f.get("text") };
      if (f.get("send_at")) body.send_at = new Date(f.get("send_at")).toISOString();
      const b = await api("POST", base, body);
      say("Broadcast scheduled.");
      await follow(b.id);
    }), previewOut,
    h("h2", {}, "Sent and scheduled"),
    broadcasts.length === 0 ? h("p", {}, "No broadcast yet.") :
      table(["Message", "State", "Send at", ""], broadcasts.map((b) => [
        b.text, b.state, when(b.send_at),
        h("button", { type: "button", class: "secondary", onclick: () => follow(b.id) }, "Follow")])));
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
  screen("Broadcast", h("div", { class: "panel" }, h("p", {}, b0.text), h("p", {}, "Send at: " + when(b0.send_at))),
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
  const { events } = await api("GET", "/api/account/security-log");
  screen("Security log", policyBanner(),
    h("p", {}, "Sign-ins and other security events of your account, newest first, with the network they came from."),
    events.length === 0 ? h("p", {}, "Nothing yet.") :
      table(["When", "Event", "Network"], events.map((e) => [when(e.at), e.event.replace(/_/g, " "), e.network || "—"])),
    submitting(h("form", { "aria-label": "Sign out everywhere" },
      h("button", { type: "submit", class: "danger" }, "Sign out on every device")),
    async () => {
      await api("DELETE", "/api/sessions");
      account = null; nav.hidden = true; say("Signed out everywhere."); go("signin");
    }));
}

async function operatorScreen() {
  const { entries } = await api("GET", "/api/operator/audit-log");
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
      say("Policy published; every account is being notified.");
      await operatorScreen();
    }),
    h("h2", {}, "Send a breach notice"),
    submitting(h("form", { "aria-label": "Send a breach notice" },
      field("What happened, what it means, what to do", { tag: "textarea", name: "summary", required: true }),
      h("p", { class: "hint" }, "Sent by email to every account."),
      h("button", { type: "submit", class: "danger" }, "Send to every account")),
    async (f) => {
      await api("POST", "/api/breach-notices", { summary: f.get("summary"), scope: "all" });
      say("Breach notice queued for every account.");
      await operatorScreen();
    }),
    h("h2", {}, "Audit trail"),
    entries.length === 0 ? h("p", {}, "Nothing yet.") :
      table(["When", "Action", "By", "Details"], entries.map((e) => [when(e.at), e.action, e.actor || "—",
        e.subject ? JSON.stringify(e.subject) : "—"])));
}

// ---- routing ---------------------------------------------------------------------------------------

const SIGNED_IN = { pages: pagesScreen, leads: leadsScreen, broadcasts: broadcastsScreen, security: securityScreen, operator: operatorScreen };
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
