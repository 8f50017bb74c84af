// The officers' console: login, the hash router, the top bar, the help overlay and the keyboard.
// Pages (review, cases, premises, inspections, fume monitors, cameras, map, drone surveys, KPIs,
// models) live in their own modules; each returns an object with optional onKey(event) -> handled,
// onModKey(event), destroy() and help sections.

import { app, CASE_READERS, can, loadCameras, OFFICERS } from "./app.js";
import { camerasPage, cameraPage, EDITOR_HELP } from "./cameras.js";
import { casePage, casesPage, CASE_HELP } from "./cases.js";
import { lang, onLangChange, setLang, t, tv } from "./i18n.js";
import { INSPECTION_READERS, inspectionPage, inspectionsPage } from "./inspections.js";
import { kpiPage } from "./kpi.js";
import { mapPage } from "./map.js";
import { MODEL_READERS, modelsPage } from "./models.js";
import { monitorsPage } from "./monitors.js";
import { PREMISES_READERS, premisesListPage, premisesPage } from "./premises.js";
import { REVIEW_HELP, reviewPage } from "./review.js";
import { SURVEY_READERS, surveysPage } from "./surveys.js";
import { api, fill, h, isTyping, onUnauthorized, parseHash, toast } from "./util.js";

const ALL_USERS = ["officer", "head", "legal_reviewer", "engineer", "admin"];
const ROUTES = [
  { path: /^\/review$/, page: reviewPage, roles: OFFICERS, nav: "review", help: REVIEW_HELP },
  { path: /^\/cases$/, page: casesPage, roles: CASE_READERS, nav: "cases" },
  { path: /^\/cases\/([^/]+)$/, page: casePage, roles: CASE_READERS, nav: "cases", help: CASE_HELP },
  { path: /^\/premises$/, page: premisesListPage, roles: PREMISES_READERS, nav: "premises" },
  { path: /^\/premises\/([^/]+)$/, page: premisesPage, roles: PREMISES_READERS, nav: "premises" },
  { path: /^\/inspections$/, page: inspectionsPage, roles: INSPECTION_READERS, nav: "inspections" },
  { path: /^\/inspections\/(\d+)$/, page: inspectionPage, roles: INSPECTION_READERS, nav: "inspections" },
  { path: /^\/monitors$/, page: monitorsPage, roles: ALL_USERS, nav: "monitors" },
  { path: /^\/cameras$/, page: camerasPage, roles: ALL_USERS, nav: "cameras" },
  { path: /^\/cameras\/([^/]+)$/, page: cameraPage, roles: ALL_USERS, nav: "cameras", help: EDITOR_HELP },
  { path: /^\/map$/, page: mapPage, roles: CASE_READERS, nav: "map" },
  { path: /^\/surveys$/, page: surveysPage, roles: SURVEY_READERS, nav: "surveys" },
  { path: /^\/surveys\/([^/]+)$/, page: surveysPage, roles: SURVEY_READERS, nav: "surveys" },
  { path: /^\/kpi$/, page: kpiPage, roles: CASE_READERS, nav: "kpi" },
  { path: /^\/models$/, page: modelsPage, roles: MODEL_READERS, nav: "models" },
];
const NAV = [
  ["review", "#/review", "nav_review", OFFICERS],
  ["cases", "#/cases", "nav_cases", CASE_READERS],
  ["premises", "#/premises", "nav_premises", PREMISES_READERS],
  ["inspections", "#/inspections", "nav_inspections", INSPECTION_READERS],
  ["monitors", "#/monitors", "nav_monitors", ALL_USERS],
  ["cameras", "#/cameras", "nav_cameras", ALL_USERS],
  ["map", "#/map", "nav_map", CASE_READERS],
  ["surveys", "#/surveys", "nav_surveys", SURVEY_READERS],
  ["kpi", "#/kpi", "nav_kpi", CASE_READERS],
  ["models", "#/models", "nav_models", MODEL_READERS],
];

const main = h("main", { id: "main" });
const header = h("header", { class: "topbar" });
let page = null; // the shown page's handle
let helpEl = null;
let afterLogin = null; // the route asked for before logging in

function defaultRoute() {
  if (can(OFFICERS)) return "#/review";
  if (can(CASE_READERS)) return "#/cases";
  return "#/cameras";
}

function renderHeader(active) {
  const user = app.user;
  fill(
    header,
    h("a", { class: "brand", href: user ? defaultRoute() : "#/" }, t("app_title"), h("small", {}, t("app_subtitle"))),
    h(
      "nav",
      { class: "nav", "aria-label": "main" },
      user
        ? NAV.filter(([, , , roles]) => can(roles)).map(([key, href, label]) =>
            h(
              "a",
              { href, testid: `nav-${key}`, "aria-current": key === active ? "page" : null },
              t(label),
              key === "review" && app.reviewCount !== null
                ? h("span", { class: "count", testid: "nav-review-count" }, String(app.reviewCount))
                : null,
            ),
          )
        : null,
    ),
    h(
      "div",
      { class: "userbox" },
      h("button", { type: "button", testid: "lang-switch", title: t("lang_switch_title"), onclick: () => setLang(lang === "en" ? "zh" : "en") }, t("lang_switch")),
      user ? h("button", { type: "button", testid: "help-button", onclick: () => toggleHelp(), title: t("help") }, "?") : null,
      user ? h("span", { testid: "whoami" }, `${user.display_name || user.username} · ${tv("role", user.role)}`) : null,
      user ? h("button", { type: "button", testid: "logout", onclick: () => logout() }, t("logout")) : null,
    ),
  );
}

function setReviewCount(n) {
  app.reviewCount = n;
  const badge = header.querySelector('[data-testid="nav-review-count"]');
  if (badge) badge.textContent = String(n);
  else renderHeader(currentNav());
}

/** Ask the API how many cases await review (after a step taken outside the queue). */
function refreshReviewCount() {
  if (!can(OFFICERS)) return;
  api("/api/review?limit=1", { quiet: true }).then(
    (page) => setReviewCount(page.total),
    () => null,
  );
}

function currentNav() {
  const { path } = parseHash(location.hash);
  return ROUTES.find((r) => r.path.test(path))?.nav;
}

function route() {
  closeHelp();
  if (page && page.destroy) page.destroy();
  page = null;
  if (!app.user) {
    showLogin();
    return;
  }
  const { path, params } = parseHash(location.hash);
  const match = ROUTES.map((r) => [r, r.path.exec(path)]).find(([, m]) => m);
  if (!match || !can(match[0].roles)) {
    location.replace(defaultRoute());
    return;
  }
  const [routeDef, groups] = match;
  renderHeader(routeDef.nav);
  document.title = `${t("nav_" + routeDef.nav)} · ${t("app_title")}`;
  main.replaceChildren();
  main.dataset.page = routeDef.nav;
  const ctx = { setReviewCount, refreshReviewCount };
  page = routeDef.page(main, params, ctx, ...groups.slice(1).map(decodeURIComponent)) || {};
  page.helpSections = routeDef.help || [];
  window.scrollTo(0, 0);
}

function showLogin() {
  renderHeader(null);
  document.title = `${t("login_title")} · ${t("app_title")}`;
  main.dataset.page = "login";
  const username = h("input", { name: "username", autocomplete: "username", required: true, testid: "login-username", autocapitalize: "none", spellcheck: "false" });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true, testid: "login-password" });
  const submit = h("button", { type: "submit", class: "primary", testid: "login-submit" }, t("login_submit"));
  const form = h(
    "form",
    {
      onsubmit: async (e) => {
        e.preventDefault();
        submit.disabled = true;
        try {
          const session = await api("/api/auth/login", {
            method: "POST",
            body: { username: username.value.trim(), password: password.value },
            quiet: true,
          });
          app.user = session.user;
          await afterLoginLoad();
          const target = afterLogin && afterLogin !== "#/" && afterLogin !== "#/login" ? afterLogin : defaultRoute();
          afterLogin = null;
          if (location.hash === target) route();
          else location.hash = target;
        } catch (err) {
          toast(err.message, "error");
          password.select();
        } finally {
          submit.disabled = false;
        }
      },
    },
    h("label", { class: "field" }, t("login_username"), username),
    h("label", { class: "field" }, t("login_password"), password),
    submit,
  );
  fill(
    main,
    h(
      "div",
      { class: "login-wrap" },
      h(
        "div",
        { class: "panel login-card", testid: "login" },
        h("h1", {}, t("login_title")),
        form,
        showDevHint() ? h("p", { class: "hint", testid: "dev-hint" }, t("login_dev_hint")) : null,
      ),
    ),
  );
  username.focus();
}

/** The demo accounts exist only in development, which /api/meta says. */
function showDevHint() {
  return Boolean(app.meta && app.meta.development);
}

async function afterLoginLoad() {
  app.reviewCount = null;
  const jobs = [loadCameras().catch(() => null)];
  if (can(OFFICERS)) {
    jobs.push(
      api("/api/review?limit=1", { quiet: true })
        .then((page) => (app.reviewCount = page.total))
        .catch(() => null),
    );
  }
  await Promise.all(jobs);
}

async function logout() {
  try {
    await api("/api/auth/logout", { method: "POST", quiet: true });
  } catch {
    // the session is gone either way
  }
  app.user = null;
  app.reviewCount = null;
  location.hash = "#/";
  route();
}

function toggleHelp() {
  if (helpEl) closeHelp();
  else openHelp();
}

function openHelp() {
  const sections = [["help_global", [[["?"], "key_help"], [["Esc"], "key_cancel"]]], ...((page && page.helpSections) || [])];
  helpEl = h(
    "div",
    { class: "overlay", testid: "help", role: "dialog", "aria-modal": "true", "aria-label": t("help_title"), onclick: (e) => e.target === helpEl && closeHelp() },
    h(
      "div",
      { class: "panel" },
      h("div", { class: "page-head" }, h("h1", {}, t("help_title")), h("span", { class: "spacer" }), h("button", { type: "button", onclick: () => closeHelp() }, t("close"), h("kbd", {}, "Esc"))),
      h(
        "div",
        { class: "help-grid" },
        sections.map(([title, rows]) =>
          h(
            "div",
            {},
            h("h2", {}, t(title)),
            h(
              "table",
              {},
              h(
                "tbody",
                {},
                rows.map(([keys, what]) => h("tr", {}, h("td", {}, keys.map((k) => (k === "…" ? " … " : h("kbd", {}, k)))), h("td", {}, t(what)))),
              ),
            ),
          ),
        ),
      ),
    ),
  );
  document.body.append(helpEl);
}

function closeHelp() {
  if (helpEl) helpEl.remove();
  helpEl = null;
}

document.addEventListener("keydown", (e) => {
  if (e.defaultPrevented || !app.user) return;
  if (helpEl) {
    if (e.key === "Escape" || e.key === "?") {
      closeHelp();
      e.preventDefault();
    }
    return;
  }
  if (e.ctrlKey || e.metaKey || e.altKey) {
    if (page && page.onModKey && page.onModKey(e)) e.preventDefault();
    return;
  }
  if (isTyping(e.target)) return;
  if (e.target instanceof HTMLMediaElement && e.key === " ") return; // the player's own play/pause
  if (e.key === "?") {
    openHelp();
    e.preventDefault();
    return;
  }
  if (page && page.onKey && page.onKey(e)) e.preventDefault();
});

// a session that ends (expired, revoked, logged out elsewhere) brings the login back, once
onUnauthorized((_error, path) => {
  if (path.startsWith("/api/auth/login") || !app.user) return false;
  app.user = null;
  afterLogin = location.hash;
  toast(t("session_expired"), "error");
  route();
  return true;
});

onLangChange(() => {
  if (app.user) route();
  else showLogin();
});

window.addEventListener("hashchange", () => route());

async function boot() {
  document.body.append(header, main);
  renderHeader(null);
  try {
    app.meta = await api("/api/meta");
  } catch {
    app.meta = { reason_codes: [], states: [], kinds: [], roles: [], actions: [] };
  }
  try {
    app.user = await api("/api/auth/me", { quiet: true });
    await afterLoginLoad();
  } catch {
    app.user = null;
    afterLogin = location.hash;
  }
  route();
}

boot();
