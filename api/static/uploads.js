// Files sent from an officer's tablet resumably, for field evidence and inspection photos:
// declare the file (POST /api/uploads), then send it in 1 MiB chunks (PATCH, each at the
// offset the server holds, in the Upload-Offset header). A 409 carries the server's offset in
// its Upload-Offset header, and the upload goes on from there; a dropped connection asks the
// server where the upload stands and goes on; a 413 halves the chunk. Each file shows a
// progress bar; a failed upload keeps its place, so submitting again resumes it.

import { t } from "./i18n.js";
import { ApiError, api, fmtBytes, h, refusal, send } from "./util.js";

export const CHUNK = 1024 * 1024;
const MIN_CHUNK = 64 * 1024;
const RETRIES = 6; // network failures or offset corrections in a row before giving up
const HASH_LIMIT = 64 * 1024 * 1024; // larger files are not read whole into memory to hash them

// what the API takes as field evidence (api/uploads.py), and the extensions that say so when the browser does not
const MEDIA_TYPES = ["image/jpeg", "image/png", "video/mp4", "video/quicktime", "audio/mpeg", "audio/mp4", "audio/wav", "audio/x-wav"];
const BY_EXTENSION = {
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  png: "image/png",
  mp4: "video/mp4",
  m4v: "video/mp4",
  mov: "video/quicktime",
  mp3: "audio/mpeg",
  m4a: "audio/mp4",
  wav: "audio/wav",
};
export const FIELD_ACCEPT = [...MEDIA_TYPES, ...Object.keys(BY_EXTENSION).map((e) => `.${e}`)].join(",");
export const PHOTO_ACCEPT = "image/jpeg,image/png,.jpg,.jpeg,.png";

/** The media type the API knows the file by, or null when it takes no such file. */
export function mediaTypeOf(file) {
  if (MEDIA_TYPES.includes(file.type)) return file.type;
  const ext = (file.name.split(".").pop() || "").toLowerCase();
  return BY_EXTENSION[ext] || null;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function sha256Of(file) {
  // only in a secure context (HTTPS or this machine); elsewhere the server checks nothing more
  if (!(globalThis.crypto && crypto.subtle) || file.size > HASH_LIMIT) return null;
  const digest = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** One file on its way: where it stands, and a row with its progress bar. */
class FileUpload {
  constructor(file, onRemove) {
    this.file = file;
    this.mediaType = mediaTypeOf(file);
    this.id = null;
    this.offset = 0;
    this.done = false;
    this.bar = h("progress", { max: file.size || 1, value: 0, testid: "upload-progress" });
    this.state = h("span", { class: "upload-state small", testid: "upload-state" });
    this.remove = h("button", { type: "button", class: "ghost", "aria-label": t("upload_remove"), title: t("upload_remove"), onclick: () => onRemove(this) }, "×");
    this.el = h(
      "li",
      { class: "upload", testid: "upload", "data-name": file.name },
      h("span", { class: "upload-name" }, file.name),
      h("span", { class: "muted small nowrap" }, `${this.mediaType ? kindOf(this.mediaType) : "?"} · ${fmtBytes(file.size)}`),
      this.remove,
      this.bar,
      this.state,
    );
    this.show(this.mediaType ? t("upload_ready") : t("upload_unsupported"), this.mediaType ? "" : "bad");
  }

  show(text, kind = "") {
    this.state.textContent = text;
    this.el.dataset.state = kind;
  }

  progress() {
    this.bar.value = this.offset;
    const pct = this.file.size ? Math.floor((100 * this.offset) / this.file.size) : 100;
    this.show(`${pct}% · ${fmtBytes(this.offset)} / ${fmtBytes(this.file.size)}`);
  }

  /** Send what the server does not have yet; resolves to the upload id. */
  async run() {
    if (this.done) return this.id;
    if (!this.mediaType) throw new ApiError(0, t("upload_unsupported_named", { name: this.file.name }));
    if (this.id === null) {
      this.show(t("upload_declaring"));
      const body = { filename: this.file.name, media_type: this.mediaType, size: this.file.size };
      const sha = await sha256Of(this.file).catch(() => null);
      if (sha) body.sha256 = sha;
      const declared = await api("/api/uploads", { method: "POST", body, quiet: true });
      this.id = declared.id;
      this.offset = declared.offset;
    }
    this.progress();
    let chunk = CHUNK;
    let failures = 0;
    let redeclared = false;
    while (this.offset < this.file.size) {
      const path = `/api/uploads/${encodeURIComponent(this.id)}`;
      const start = this.offset;
      let answer;
      try {
        answer = await send(path, {
          method: "PATCH",
          body: this.file.slice(start, Math.min(this.file.size, start + chunk)),
          headers: { "Upload-Offset": String(start), "Content-Type": "application/offset+octet-stream" },
        });
      } catch (e) {
        // the connection dropped: the chunk may or may not have arrived; ask, then go on
        if (++failures > RETRIES) throw e;
        this.show(t("upload_retrying", { n: failures }), "warn");
        await sleep(Math.min(8000, 400 * 2 ** (failures - 1)));
        const where = await api(path, { quiet: true }).catch((err) => {
          if (err.status === 0) return null; // still offline: try the chunk again
          throw err;
        });
        if (where) this.offset = where.offset;
        continue;
      }
      const { response, data } = answer;
      if (response.ok) {
        this.offset = data.offset;
        failures = 0;
        this.progress();
        continue;
      }
      const held = response.headers.get("Upload-Offset");
      if (response.status === 409 && held !== null && /^\d+$/.test(held)) {
        // the server holds another offset (a chunk that arrived though its answer was lost): go on from it
        if (++failures > RETRIES) throw refusal(response, data, path);
        this.offset = Number(held);
        this.progress();
        continue;
      }
      if (response.status === 413 && chunk > MIN_CHUNK) {
        chunk = Math.max(MIN_CHUNK, Math.floor(chunk / 2)); // this deployment takes smaller requests
        continue;
      }
      if (response.status === 404 && !redeclared) {
        // expired or cleared on the server: declare it again and start over, once
        redeclared = true;
        this.id = null;
        const body = { filename: this.file.name, media_type: this.mediaType, size: this.file.size };
        const declared = await api("/api/uploads", { method: "POST", body, quiet: true });
        this.id = declared.id;
        this.offset = declared.offset;
        continue;
      }
      throw refusal(response, data, path);
    }
    this.done = true;
    this.bar.value = this.file.size;
    this.show(t("upload_done"), "ok");
    return this.id;
  }
}

function kindOf(mediaType) {
  const kind = mediaType.startsWith("image/") ? "photo" : mediaType.startsWith("video/") ? "video" : "audio";
  return t(`upload_kind_${kind}`);
}

/** A file chooser with a list of the chosen files and their progress; `upload()` sends them all. */
export function filePicker({ accept = FIELD_ACCEPT, testid = "upload-input", label = t("upload_choose"), onChange = () => null } = {}) {
  const entries = [];
  const list = h("ul", { class: "uploads", testid: "uploads" });
  const drop = (entry) => {
    entries.splice(entries.indexOf(entry), 1);
    entry.el.remove();
    onChange(entries);
  };
  const input = h("input", {
    type: "file",
    multiple: true,
    accept,
    testid,
    class: "file-input",
    onchange: () => {
      for (const file of input.files) {
        const entry = new FileUpload(file, drop);
        entries.push(entry);
        list.append(entry.el);
      }
      input.value = ""; // the same file may be chosen again after removing it
      onChange(entries);
    },
  });
  const el = h("div", { class: "picker-files" }, h("label", { class: "button file-button" }, "＋ ", label, input), list);
  return {
    el,
    entries,
    /** Upload every file not sent yet, one after the other; the upload ids, or the first refusal thrown. */
    async upload() {
      const ids = [];
      const busy = (on) => {
        input.disabled = on; // no file added or removed while the list is being sent
        entries.forEach((e) => (e.remove.disabled = on));
      };
      busy(true);
      try {
        for (const entry of [...entries]) {
          try {
            ids.push(await entry.run());
          } catch (e) {
            entry.show(`${t("upload_failed")}: ${e.message}`, "bad");
            throw e;
          }
        }
      } finally {
        busy(false);
      }
      return ids;
    },
    clear() {
      entries.splice(0).forEach((e) => e.el.remove());
      onChange(entries);
    },
  };
}
