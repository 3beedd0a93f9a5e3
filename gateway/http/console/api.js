// The admin API from the browser: credentials, JSON requests, errors, and server-sent events read with
// fetch (EventSource cannot send an Authorization header, and a user/password sign-in needs one).
// Credentials live in sessionStorage (this tab only): {"header": "Bearer ..." | "Basic ..."}.

const KEY = "rosettamq-auth";
let header = null;
try {
  header = JSON.parse(sessionStorage.getItem(KEY) || "null")?.header || null;
} catch (err) {
  header = null;
}
const unauthorized = new Set();

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Sign in with a token (API token or OAuth access token) or a user and password of the password file. */
export function setCredentials({ token, user, password } = {}) {
  if (token) header = "Bearer " + token;
  else if (user) header = "Basic " + btoa(String.fromCharCode(...new TextEncoder().encode(`${user}:${password || ""}`)));
  else header = null;
  if (header) sessionStorage.setItem(KEY, JSON.stringify({ header }));
  else sessionStorage.removeItem(KEY);
}

export function hasCredentials() {
  return header !== null;
}

/** `fn(err)` runs on every 401 (the app goes back to its sign-in page). */
export function onUnauthorized(fn) {
  unauthorized.add(fn);
}

function headers(extra = {}) {
  return header ? { Authorization: header, ...extra } : { ...extra };
}

// credentials "omit": a 401's Basic challenge never opens the browser's own login dialog.
export async function api(path, { method = "GET", body, signal, quiet401 = false } = {}) {
  const init = { method, signal, credentials: "omit", headers: headers() };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let data = {};
  try {
    data = text ? JSON.parse(text) : {};
  } catch (err) {
    data = { error: { message: text.slice(0, 200) } };
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data.error?.message || response.statusText || `HTTP ${response.status}`);
    if (response.status === 401 && !quiet401) unauthorized.forEach((fn) => fn(error));
    throw error;
  }
  return data;
}

/** A query string from the entries that have a value. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? "?" + text : "";
}

/**
 * Read a server-sent event stream; `onEvent(name, data)` per event, `onState("open"|"closed"|"refused")`.
 * Reconnects after a pause until `close()` is called (the returned function).
 */
export function stream(path, onEvent, onState = () => {}) {
  let controller = null;
  let stopped = false;
  let timer = null;
  const run = async () => {
    controller = new AbortController();
    try {
      const response = await fetch(path, { credentials: "omit", headers: headers({ Accept: "text/event-stream" }),
                                           signal: controller.signal });
      if (!response.ok) {
        const err = new ApiError(response.status, response.statusText);
        if (response.status === 401) unauthorized.forEach((fn) => fn(err));
        onState("refused", err);
        if ([401, 403].includes(response.status)) return;  // retrying would not change the answer
      } else {
        onState("open");
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value.replace(/\r\n/g, "\n");
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let name = "message";
            const data = [];
            for (const line of block.split("\n")) {
              if (line.startsWith("event:")) name = line.slice(6).trim();
              else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
            }
            if (data.length) onEvent(name, data.join("\n"));
          }
        }
        onState("closed");
      }
    } catch (err) {
      if (stopped) return;
      onState("closed", err);
    }
    if (!stopped) timer = setTimeout(run, 2000);  // a reconnection delay, as EventSource's retry
  };
  run();
  return () => {
    stopped = true;
    clearTimeout(timer);
    if (controller) controller.abort();
  };
}
