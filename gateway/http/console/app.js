// RosettaMQ management console: sign-in, the navigation, hash routes and the live stats stream.
// Plain ES modules, no build step. Each page module renders into <main id="view"> and returns a cleanup;
// the overview's markup is in index.html. What the page offers follows the role /api/v1/whoami names:
// a monitor (read only) sees actions disabled.

import { api, hasCredentials, onUnauthorized, setCredentials, stream } from "./api.js";
import * as overview from "./overview.js";
import * as clients from "./clients.js";
import * as sessions from "./sessions.js";
import * as retained from "./retained.js";
import * as amqp from "./amqp.js";
import * as lwm2m from "./lwm2m.js";

const $ = (id) => document.getElementById(id);
const statsListeners = new Set();

const ctx = {
  role: null,
  user: null,
  onStats: (fn) => statsListeners.add(fn),
  go: (hash) => { location.hash = hash; },
  showAccess: (err) => showAccess(accessText(err)),
};

// [pattern on the hash path, page]: a page is render(view, ctx, params, query) -> cleanup | undefined.
const ROUTES = [
  [/^\/(?:overview)?$/, "overview", () => overview.show(ctx)],
  [/^\/cluster$/, "cluster", () => overview.show(ctx, "cluster")],
  [/^\/clients$/, "clients", (view, q) => clients.list(view, ctx, q)],
  [/^\/clients\/(.+)$/, "clients", (view, q, id) => clients.detail(view, ctx, id, q)],
  [/^\/sessions$/, "sessions", (view) => sessions.render(view, ctx)],
  [/^\/retained$/, "retained", (view, q) => retained.render(view, ctx, q)],
  [/^\/amqp$/, "amqp", (view) => amqp.render(view, ctx)],
  [/^\/lwm2m$/, "lwm2m", (view) => lwm2m.list(view, ctx)],
  [/^\/lwm2m\/(.+)$/, "lwm2m", (view, q, ep) => lwm2m.device(view, ctx, ep)],
];

function showAccess(message) {
  const notice = $("access-message");
  notice.textContent = message || "";
  notice.hidden = !message;
}

function accessText(err) {
  if (err.status === 401) return "Sign in: the API token, or the user and password of the gateway's password file.";
  if (err.status === 403) return `Access refused (403): ${err.message}.`;
  if (err.status === 429) return `Too many failed logins: ${err.message}.`;
  return `The admin API answered: ${err.message}`;
}

function setStatus(text, live = false) {
  $("status").textContent = text;
  $("status").className = live ? "status live" : "status";
}

// -- the stats stream --------------------------------------------------------------------

let closeStream = null;

function startStream() {
  if (closeStream) return;
  closeStream = stream("/api/v1/events", (name, data) => {
    if (name !== "stats") return;
    const stats = JSON.parse(data);
    setStatus("live", true);
    statsListeners.forEach((fn) => fn(stats));
  }, (state) => {
    if (state === "closed") setStatus("disconnected (retrying)");
    if (state === "refused") setStatus("refused");
  });
}

function stopStream() {
  if (closeStream) closeStream();
  closeStream = null;
}

// -- signing in --------------------------------------------------------------------------

let signedIn = false;

async function checkWhoami() {
  let me;
  try {
    me = await api("/api/v1/whoami", { quiet401: true });
  } catch (err) {
    signedOut(err);
    return false;
  }
  signedIn = true;
  ctx.role = me.role;
  ctx.user = me.user;
  document.body.dataset.role = me.role;
  showAccess("");
  $("signin").hidden = true;
  $("nav").hidden = false;
  $("sign-out").hidden = !hasCredentials();
  $("whoami").textContent = (me.user ? `${me.user} · ` : "") + (me.role === "admin" ? "admin" : "monitor (read only)");
  startStream();
  route();
  return true;
}

function signedOut(err) {
  signedIn = false;
  stopStream();
  closePage();
  ctx.role = null;
  document.body.dataset.role = "";
  $("nav").hidden = true;
  $("overview").hidden = true;
  $("view").hidden = true;
  $("whoami").textContent = "";
  $("sign-out").hidden = !hasCredentials();
  setStatus([401, 403, 429].includes(err.status) ? (err.status === 401 ? "signed out" : "refused") : "unreachable");
  if (err.status === 401) showAccess("");
  else showAccess(accessText(err));
  $("signin").hidden = false;
}

function initSignIn() {
  const kind = () => document.querySelector("input[name=kind]:checked").value;
  for (const radio of document.querySelectorAll("input[name=kind]")) {
    radio.addEventListener("change", () => {
      $("signin-token-label").hidden = kind() !== "token";
      $("signin-user-label").hidden = $("signin-password-label").hidden = kind() !== "password";
    });
  }
  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("signin-error").textContent = "";
    if (kind() === "token") setCredentials({ token: $("signin-token").value.trim() });
    else setCredentials({ user: $("signin-user").value, password: $("signin-password").value });
    $("signin-password").value = "";
    if (!(await checkWhoami()) && $("status").textContent === "signed out") {
      setCredentials({});
      $("signin-error").textContent = "Those credentials were refused (401).";
    }
  });
  $("sign-out").addEventListener("click", () => {
    setCredentials({});
    checkWhoami();
  });
  onUnauthorized(() => {
    if (!signedIn) return;
    setCredentials({});
    signedOut({ status: 401 });
    $("signin-error").textContent = "Your credentials are no longer accepted: sign in again.";
  });
}

// -- routing -----------------------------------------------------------------------------

let cleanup = null;

function closePage() {
  if (cleanup) cleanup();
  cleanup = null;
}

function route() {
  if (!signedIn) return;
  closePage();
  const raw = location.hash.replace(/^#/, "") || "/overview";
  const [path, search] = raw.split("?");
  const q = new URLSearchParams(search || "");
  const view = $("view");
  for (const [pattern, name, page] of ROUTES) {
    const match = path.match(pattern);
    if (!match) continue;
    const isOverview = name === "overview" || name === "cluster";
    $("overview").hidden = !isOverview;
    view.hidden = isOverview;
    if (!isOverview) view.replaceChildren();
    for (const link of document.querySelectorAll("#nav a")) {
      if (link.dataset.route === name) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    const params = match.slice(1).map((p) => decodeURIComponent(p));
    cleanup = page(view, q, ...params) || null;
    document.title = `RosettaMQ · ${name}`;
    return;
  }
  $("overview").hidden = true;
  view.hidden = false;
  view.replaceChildren(Object.assign(document.createElement("p"), { textContent: `no page at ${path}` }));
}

window.addEventListener("hashchange", () => {
  route();
  const main = $("overview").hidden ? $("view") : $("overview");
  main.focus({ preventScroll: true });  // keyboard users land on the page they chose
});

initSignIn();
overview.init(ctx);
checkWhoami();
