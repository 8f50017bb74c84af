// What every page of the console shares: who is logged in, the API's vocabulary, the cameras' names.

import { api } from "./util.js";

export const app = {
  user: null, // {username, display_name, role}
  meta: null, // /api/meta: reason codes, states, kinds, roles, actions
  cameras: [], // [{id, name, ...}] for the filters and names
  reviewCount: null,
};

export const OFFICERS = ["officer", "head"];
export const CASE_READERS = ["officer", "head", "legal_reviewer"];
export const CAMERA_EDITORS = ["engineer", "admin"];

export function can(roles) {
  return Boolean(app.user && roles.includes(app.user.role));
}

export function cameraName(id) {
  if (!id) return "—";
  const camera = app.cameras.find((c) => c.id === id);
  return camera ? camera.name : id;
}

export function reasonLabel(code, lang) {
  const reason = app.meta && app.meta.reason_codes.find((r) => r.code === code);
  if (!reason) return code || "—";
  return lang === "en" ? reason.en : reason.zh;
}

export async function loadCameras() {
  const page = await api("/api/cameras?limit=500");
  app.cameras = page.items;
  return app.cameras;
}

export function navigate(hash) {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = hash;
}
