// Small helpers shared by the console and the party portal: building elements, calling the
// API (errors become visible toasts, never silence), and formatting times.

import { t } from "./i18n.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const SVG_TAGS = new Set(["svg", "g", "rect", "polygon", "polyline", "circle", "line", "text", "path", "title", "a"]);

/** An element: h("div", {class: "x", testid: "y", onclick: f}, "text", child, [more]). Text is never parsed as HTML. */
export function h(tag, attrs, ...children) {
  const svg = tag.startsWith("svg:");
  const name = svg ? tag.slice(4) : tag;
  const el = svg && SVG_TAGS.has(name) ? document.createElementNS(SVG_NS, name) : document.createElement(name);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "testid") el.setAttribute("data-testid", value);
    else if (key === "value" && !svg) el.value = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The text of a FastAPI error `detail`: a string, or pydantic's list of {loc, msg}. */
export function detailText(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((d) => {
        const where = Array.isArray(d.loc) ? d.loc.filter((p) => p !== "body").join(".") : "";
        return where ? `${where}: ${d.msg}` : d.msg;
      })
      .join("; ");
  }
  return detail ? JSON.stringify(detail) : "";
}

let unauthorizedHandler = null;
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

/** Call the API (the session cookie says who we are); a refusal is toasted with its `detail` and thrown. */
export async function api(path, { method = "GET", body, quiet = false } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: body === undefined ? { Accept: "application/json" } : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    const message = `${t("network_error")} (${e.message})`;
    if (!quiet) toast(message, "error");
    throw new ApiError(0, message);
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = refusal(response, data, path);
    if (!quiet) showError(error);
    throw error;
  }
  return data;
}

/** A request with a body of bytes (a file, a chunk): {response, data}, whatever the status.
 * Nothing is toasted: the caller reads the answer (see `refusal`, `showError`). A network
 * failure throws an ApiError of status 0. */
export async function send(path, { method = "POST", body, headers = {} } = {}) {
  let response;
  try {
    response = await fetch(path, { method, credentials: "same-origin", headers: { Accept: "application/json", ...headers }, body });
  } catch (e) {
    throw new ApiError(0, `${t("network_error")} (${e.message})`);
  }
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  return { response, data };
}

/** The ApiError of a refused answer, its message the API's `detail`; a 401 brings the login back. */
export function refusal(response, data, path = "") {
  const message = detailText(data && data.detail) || `${response.status} ${response.statusText}`;
  const error = new ApiError(response.status, message);
  if (response.status === 401 && unauthorizedHandler && unauthorizedHandler(error, path)) error.handled = true;
  return error;
}

/** Toast an error as `api()` does: the status in words, then the API's reason. */
export function showError(error) {
  if (error instanceof ApiError) {
    if (!error.handled) toast(`${error.status ? t("http_" + error.status, {}, "") : ""}${error.message}`, "error");
  } else toast(String((error && error.message) || error), "error");
}

// API errors are toasted where they happen; anything else that escapes is shown too.
window.addEventListener("unhandledrejection", (event) => {
  if (event.reason instanceof ApiError) {
    event.preventDefault();
    return;
  }
  toast(String((event.reason && event.reason.message) || event.reason), "error");
});

/** A message in the corner: errors stay until closed (or 12 s), others fade after 4 s. */
export function toast(message, kind = "info") {
  let stack = document.getElementById("toasts");
  if (!stack) {
    stack = h("div", { id: "toasts", class: "toasts", "aria-live": "assertive" });
    document.body.append(stack);
  }
  const close = h("button", { class: "toast-close", "aria-label": t("close"), onclick: () => item.remove() }, "×");
  const item = h(
    "div",
    { class: `toast toast-${kind}`, role: kind === "error" ? "alert" : "status", testid: "toast", "data-kind": kind },
    h("span", {}, message),
    close,
  );
  stack.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 12000 : 4000);
  while (stack.children.length > 4) stack.firstChild.remove();
  return item;
}

const pad = (n) => String(n).padStart(2, "0");

/** A time as the officer's clock shows it: 2026-12-06 21:59. */
export function fmtTime(iso, seconds = false) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const date = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  return `${date} ${pad(d.getHours())}:${pad(d.getMinutes())}${seconds ? ":" + pad(d.getSeconds()) : ""}`;
}

/** A duration in seconds, in the largest unit that fits: 45 s, 12 min, 3 h, 2 d. */
export function fmtAge(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return t("age_s", { n: s });
  if (s < 3600) return t("age_min", { n: Math.floor(s / 60) });
  if (s < 86400 * 2) return t("age_h", { n: Math.floor(s / 3600) });
  return t("age_d", { n: Math.floor(s / 86400) });
}

export function fmtNumber(value, digits = 1) {
  if (value === null || value === undefined) return "—";
  return Number.isInteger(value) ? String(value) : Number(value).toFixed(digits);
}

/** A size in bytes as people read it: 812 B, 34.5 KB, 2.1 MB. */
export function fmtBytes(n) {
  if (n === null || n === undefined) return "—";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

/** Now (or `d`) as a datetime-local input's value: 2026-12-06T21:59, the officer's clock. */
export function localInputValue(d = new Date()) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A datetime-local value as ISO 8601 with the local UTC offset then: 2026-12-06T21:59:00+08:00. */
export function withLocalOffset(value) {
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return null;
  const minutes = -d.getTimezoneOffset();
  const sign = minutes >= 0 ? "+" : "-";
  const abs = Math.abs(minutes);
  const seconds = value.length === 16 ? ":00" : "";
  return `${value}${seconds}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

export function fmtRate(value) {
  return value === null || value === undefined ? "—" : `${(value * 100).toFixed(1)}%`;
}

export function shortId(id) {
  return id ? id.slice(0, 12) : "";
}

/** The frame number in an evidence file's name (keyframe-000011.png -> 11), or null. */
export function frameOf(name) {
  const m = /(\d+)\.\w+$/.exec(name);
  return m ? Number(m[1]) : null;
}

export function isTyping(target) {
  return (
    target instanceof HTMLElement &&
    (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))
  );
}

/** Query parameters of a hash route (#/cases?state=x) as an object. */
export function parseHash(hash) {
  const raw = hash.replace(/^#/, "") || "/";
  const [path, query = ""] = raw.split("?");
  return { path, params: Object.fromEntries(new URLSearchParams(query)) };
}

export function hashWith(path, params) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v != null)).toString();
  return `#${path}${query ? "?" + query : ""}`;
}
