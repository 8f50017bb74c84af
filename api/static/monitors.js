// Online fume monitors (油烟在线监测): each monitor's state (online, stale, offline), its premises,
// its last reading and how many readings came in the last hour against how many were due;
// engineers and admins add monitors (the other settings keep the API's defaults).

import { CAMERA_EDITORS, can } from "./app.js";
import { t, tv } from "./i18n.js";
import { premisesHref, PREMISES_READERS } from "./premises.js";
import { api, fill, fmtAge, fmtTime, h, showError, toast } from "./util.js";

const REFRESH_MS = 30_000;
const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const GB18483 = 2.0; // mg/m³, the national standard and the API's default threshold

export function monitorsPage(root) {
  const tbody = h("tbody", {}, h("tr", {}, h("td", { colspan: 6, class: "muted" }, t("loading"))));
  const summary = h("div", { class: "legend", testid: "monitor-summary" });
  const checked = h("span", { class: "muted small", testid: "monitors-checked" });
  let known = [];
  let timer = null;

  const premisesCell = (code) => {
    if (!code) return h("span", { class: "muted" }, "—");
    return can(PREMISES_READERS) ? h("a", { class: "mono", href: premisesHref(code), testid: "monitor-premises" }, code) : h("span", { class: "mono" }, code);
  };

  function load(quiet = false) {
    return api("/api/monitors", { quiet }).then(
      (statuses) => {
        known = statuses;
        const counts = { online: 0, stale: 0, offline: 0 };
        statuses.forEach((m) => (counts[m.state] = (counts[m.state] || 0) + 1));
        fill(
          summary,
          Object.entries(counts).map(([state, n]) => h("span", { class: `badge mon-${state}`, testid: `monitors-${state}` }, `${tv("monitor_state", state)} ${n}`)),
        );
        checked.textContent = statuses.length ? t("monitors_checked", { at: fmtTime(statuses[0].checked_at, true) }) : "";
        fill(
          tbody,
          statuses.length === 0
            ? h("tr", {}, h("td", { colspan: 6, class: "muted", testid: "monitors-empty" }, t("monitors_empty")))
            : statuses.map((m) => {
                const ratio = m.expected_per_hour ? m.readings_last_hour / m.expected_per_hour : 0;
                const ignored = Object.values(m.ignored || {}).reduce((a, b) => a + b, 0);
                return h(
                  "tr",
                  { testid: "monitor-row", "data-monitor": m.monitor_id, "data-state": m.state, class: `mon-row-${m.state}` },
                  h("td", { class: "mono" }, m.monitor_id),
                  h("td", {}, premisesCell(m.premises_id)),
                  h("td", {}, h("span", { class: `badge mon-${m.state}`, testid: "monitor-state" }, tv("monitor_state", m.state))),
                  h(
                    "td",
                    { class: "nowrap" },
                    m.last_seen ? [fmtTime(m.last_seen, true), h("div", { class: "muted small" }, t("ago", { age: fmtAge((Date.parse(m.checked_at) - Date.parse(m.last_seen)) / 1000) }))] : h("span", { class: "muted" }, t("monitors_never")),
                  ),
                  h(
                    "td",
                    { class: "num", testid: "monitor-rate" },
                    `${m.readings_last_hour} / ${Math.round(m.expected_per_hour)}`,
                    h("div", { class: "rate-bar", title: `${Math.round(ratio * 100)}%` }, h("span", { style: `width:${Math.min(100, Math.round(ratio * 100))}%` })),
                  ),
                  h("td", { class: "num small" }, ignored || m.spikes ? t("monitors_ignored", { ignored, spikes: m.spikes }) : "—"),
                );
              }),
        );
      },
      (e) => fill(tbody, h("tr", {}, h("td", { colspan: 6, class: "muted", testid: "monitors-error" }, e.message))),
    );
  }

  fill(
    root,
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, t("monitors_title")),
      summary,
      h("span", { class: "spacer" }),
      checked,
      h("button", { type: "button", testid: "monitors-refresh", onclick: () => load() }, "↻ ", t("refresh")),
    ),
    can(CAMERA_EDITORS) ? addForm() : null,
    h(
      "div",
      { class: "panel" },
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { testid: "monitors-table" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              h("th", {}, t("monitor_id")),
              h("th", {}, t("monitor_premises")),
              h("th", {}, t("monitor_state")),
              h("th", {}, t("monitor_last_seen")),
              h("th", { class: "num" }, t("monitor_rate")),
              h("th", { class: "num" }, t("monitor_ignored")),
            ),
          ),
          tbody,
        ),
      ),
      h("p", { class: "muted small", style: "margin:.6rem 0 0" }, t("monitors_hint")),
    ),
  );

  function addForm() {
    const id = h("input", { required: true, maxlength: 64, pattern: ID.source, testid: "monitor-new-id", autocapitalize: "none", spellcheck: "false", placeholder: "MON-0001" });
    const premises = h("input", { maxlength: 64, testid: "monitor-new-premises", autocapitalize: "none", spellcheck: "false", placeholder: "R-0001" });
    const threshold = h("input", { type: "number", min: 0.01, max: 1000, step: 0.01, value: GB18483, required: true, testid: "monitor-new-threshold", inputmode: "decimal" });
    const replace = h("input", { type: "checkbox", testid: "monitor-new-replace" });
    const submit = h("button", { type: "submit", class: "primary", testid: "monitor-new-submit" }, t("monitor_add"));
    return h(
      "details",
      { class: "panel import-panel", testid: "monitor-add" },
      h("summary", { testid: "monitor-add-open" }, t("monitor_add_title")),
      h(
        "form",
        {
          class: "toolbar",
          onsubmit: async (e) => {
            e.preventDefault();
            const monitorId = id.value.trim();
            const premisesId = premises.value.trim();
            if (!ID.test(monitorId) || (premisesId && !ID.test(premisesId))) {
              toast(t("monitor_bad_id"), "error");
              return;
            }
            if (known.some((m) => m.monitor_id === monitorId) && !replace.checked) {
              toast(t("monitor_exists", { id: monitorId }), "error");
              replace.focus();
              return;
            }
            const body = { monitor_id: monitorId, premises_id: premisesId || null, threshold_mg_m3: Number(threshold.value) };
            submit.disabled = true;
            try {
              await api(`/api/monitors/${encodeURIComponent(monitorId)}`, { method: "PUT", body, quiet: true });
              toast(t("monitor_added", { id: monitorId }), "ok");
              id.value = "";
              premises.value = "";
              replace.checked = false;
              await load();
            } catch (err) {
              showError(err);
            } finally {
              submit.disabled = false;
            }
          },
        },
        h("label", { class: "field" }, t("monitor_id"), id),
        h("label", { class: "field" }, t("monitor_premises_code"), premises),
        h("label", { class: "field" }, t("monitor_threshold"), threshold),
        h("label", { class: "check" }, replace, t("monitor_replace")),
        submit,
      ),
      h("p", { class: "small muted" }, t("monitor_add_hint")),
    );
  }

  load();
  timer = setInterval(() => {
    if (!document.hidden) load(true); // the table says what went wrong; no toast every half minute
  }, REFRESH_MS);
  return {
    destroy() {
      clearInterval(timer);
    },
  };
}
