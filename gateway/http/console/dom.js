// DOM helpers shared by the pages. Server strings only ever reach the page as text nodes or
// attribute values (never innerHTML), so a client id or a payload cannot inject markup.

/** h("tag.class#id", {attrs, on: {click}}, ...children): children are nodes, strings or arrays. */
export function h(spec, attrs = {}, ...children) {
  const [, tag, rest] = spec.match(/^([a-z0-9]+)(.*)$/i);
  const element = document.createElement(tag);
  for (const part of rest.match(/[.#][^.#]+/g) || []) {
    if (part[0] === ".") element.classList.add(part.slice(1));
    else element.id = part.slice(1);
  }
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "on") for (const [event, fn] of Object.entries(value)) element.addEventListener(event, fn);
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (key === "text") element.textContent = String(value);
    else if (key in element && typeof value !== "string") element[key] = value;
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** A table in a horizontally scrolling box; `columns`: [{label, value(row) -> node|string, className}]. */
export function table(columns, rows, { id, rowAttrs = () => ({}), empty = "nothing here" } = {}) {
  const head = h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.className }, c.label))));
  const body = h("tbody", {}, rows.length ? rows.map((row) => h("tr", rowAttrs(row),
    columns.map((c) => h("td", { class: c.className }, cell(c.value(row))))))
    : h("tr", {}, h("td.muted", { colspan: columns.length }, empty)));
  return h("div.scroll", {}, h("table", { id }, head, body));
}

function cell(value) {
  if (value === null || value === undefined) return "";
  return value instanceof Node || Array.isArray(value) ? value : String(value);
}

/** A modal confirmation (<dialog>): resolves true when the user confirms. */
export function confirmDialog(message, { action = "Confirm", danger = true } = {}) {
  return new Promise((resolve) => {
    const dialog = h("dialog.confirm", { "aria-labelledby": "confirm-message" },
      h("form", { method: "dialog" },
        h("p#confirm-message", {}, message),
        h("div.buttons", {},
          h("button#confirm-cancel", { value: "cancel", type: "submit" }, "Cancel"),
          h("button#confirm-ok", { value: "ok", type: "submit", class: danger ? "danger" : "" }, action))));
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(dialog.returnValue === "ok");
    });
    document.body.append(dialog);
    dialog.showModal();
    dialog.querySelector("#confirm-cancel").focus();
  });
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** A button that only an administrator can use: disabled (with the reason) for a monitor. */
export function actionButton(ctx, label, onClick, attrs = {}) {
  const readOnly = ctx.role !== "admin";
  return h("button", { type: "button", ...attrs, disabled: readOnly,
                       title: readOnly ? "read-only role: actions need an administrator" : attrs.title,
                       on: { click: onClick } }, label);
}

/** A line that reports what an action did, or its error. */
export function outcome(element, promise, describe) {
  element.classList.remove("error");
  element.textContent = "…";
  return promise.then((answer) => {
    element.textContent = describe(answer);
    return answer;
  }, (err) => {
    element.classList.add("error");
    element.textContent = `error${err.status ? " " + err.status : ""}: ${err.message}`;
    return null;
  });
}

export function when(seconds) {
  if (seconds === null || seconds === undefined) return "";
  return new Date(seconds * 1000).toLocaleString();
}

export function duration(seconds) {
  const s = Math.floor(seconds);
  if (s >= 86400) return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}

export function setText(element, value) {
  if (element.textContent !== String(value)) element.textContent = value;
}

/** Paging controls for `{total, offset, limit}`; `go(offset)` loads another page. */
export function pager(total, offset, limit, go) {
  const last = Math.max(0, Math.ceil(total / limit) - 1) * limit;
  return h("nav.pager", { "aria-label": "pages" },
    h("button.prev", { type: "button", disabled: offset <= 0, on: { click: () => go(Math.max(0, offset - limit)) } }, "‹ previous"),
    h("span.range", {}, total ? `${offset + 1}–${Math.min(total, offset + limit)} of ${total}` : "0 of 0"),
    h("button.next", { type: "button", disabled: offset >= last, on: { click: () => go(offset + limit) } }, "next ›"));
}
