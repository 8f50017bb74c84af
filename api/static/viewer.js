// The keyframe viewer of the review queue and the case page: a package's keyframes, flipped with
// ←/→, with the detections drawn over them in an SVG whose coordinates are the keyframe's pixels.
// An officer may select a box and drag a new one (the correction the API stores).

import { t } from "./i18n.js";
import { frameOf, h, shortId } from "./util.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const MIN_BOX = 2; // pixels of the keyframe; smaller drags are slips, not boxes

/** The keyframes of `packages` in order, each with its annotated twin and its package's clip. */
export function slidesOf(packages) {
  const slides = [];
  for (const pkg of packages) {
    const byKind = (kind) => pkg.files.filter((f) => f.kind === kind);
    const clip = byKind("clip")[0] || null;
    const annotated = new Map(byKind("annotated").map((f) => [frameOf(f.name), f]));
    let keyframes = byKind("keyframe");
    if (keyframes.length === 0) keyframes = byKind("annotated");
    keyframes.sort((a, b) => frameOf(a.name) - frameOf(b.name));
    for (const file of keyframes) {
      const frame = frameOf(file.name);
      slides.push({
        packageId: pkg.package_id,
        frame,
        url: file.url,
        annotatedUrl: (annotated.get(frame) || file).url,
        clip,
      });
    }
  }
  return slides;
}

export class EvidenceViewer {
  /**
   * packages: EvidencePublic[]; detections: DetectionPublic[] (the viewer keeps them current);
   * onSlide(slide): the shown keyframe changed; onDrawn(detection, box): a new box was drawn for it.
   */
  constructor({ packages, detections = [], onSlide = () => {}, onDrawn = null, smooth = false }) {
    this.slides = slidesOf(packages);
    this.detections = detections;
    this.index = 0;
    this.annotated = false;
    this.drawing = false;
    this.selectedId = null;
    this.onSlide = onSlide;
    this.onDrawn = onDrawn;
    this.sizes = new Map(); // url -> [w, h]
    this.img = h("img", { testid: "keyframe", alt: "", draggable: "false" });
    this.svg = document.createElementNS(SVG_NS, "svg");
    this.svg.setAttribute("class", "overlay");
    this.svg.setAttribute("data-testid", "overlay");
    this.svg.setAttribute("preserveAspectRatio", "none");
    this.tags = h("div");
    this.banner = h("div", { class: "banner", hidden: true });
    this.frameEl = h("div", { class: "frame" + (smooth ? " smooth" : ""), testid: "keyframe-frame" }, this.img, this.svg, this.tags, this.banner);
    this.label = h("span", { class: "label", testid: "keyframe-label" });
    this.annotatedButton = h("button", { type: "button", onclick: () => this.toggleAnnotated(), testid: "toggle-annotated" });
    this.thumbs = h("div", { class: "thumbs" });
    this.el = h(
      "div",
      { class: "viewer" },
      this.frameEl,
      h(
        "div",
        { class: "viewer-bar" },
        h("button", { type: "button", onclick: () => this.prev(), "aria-label": "previous keyframe", testid: "keyframe-prev" }, "◀", h("kbd", {}, "←")),
        this.label,
        this.annotatedButton,
        h("button", { type: "button", onclick: () => this.next(), "aria-label": "next keyframe", testid: "keyframe-next" }, h("kbd", {}, "→"), "▶"),
      ),
      this.thumbs,
    );
    this.img.addEventListener("load", () => {
      this.sizes.set(this.img.currentSrc || this.img.src, [this.img.naturalWidth, this.img.naturalHeight]);
      this.drawBoxes();
    });
    this.bindDrawing();
    if (this.slides.length === 0) {
      this.frameEl.replaceWith(h("div", { class: "panel muted" }, t("review_no_keyframes")));
    }
    this.renderThumbs();
    this.show(0);
  }

  get slide() {
    return this.slides[this.index] || null;
  }

  /** Detections drawn on the shown keyframe. */
  shown() {
    const slide = this.slide;
    if (!slide) return [];
    return this.detections.filter((d) => d.package_id === slide.packageId && d.frame === slide.frame);
  }

  selected() {
    const shown = this.shown();
    return shown.find((d) => d.id === this.selectedId) || shown[0] || null;
  }

  show(index) {
    if (this.slides.length === 0) return;
    this.index = (index + this.slides.length) % this.slides.length;
    const slide = this.slide;
    if (!this.shown().some((d) => d.id === this.selectedId)) this.selectedId = this.shown()[0]?.id ?? null;
    const url = this.annotated ? slide.annotatedUrl : slide.url;
    this.img.dataset.frame = String(slide.frame);
    this.img.dataset.package = slide.packageId;
    if (!this.img.src.endsWith(url)) this.img.src = url;
    else this.drawBoxes();
    this.label.textContent = `${t("review_keyframe", { i: this.index + 1, n: this.slides.length })} · #${slide.frame} · ${shortId(slide.packageId)}`;
    this.annotatedButton.textContent = this.annotated ? t("review_clean") : t("review_annotated");
    this.annotatedButton.append(h("kbd", {}, "A"));
    for (const [i, button] of [...this.thumbs.children].entries()) button.setAttribute("aria-current", String(i === this.index));
    this.onSlide(slide);
  }

  next() {
    this.show(this.index + 1);
  }

  prev() {
    this.show(this.index - 1);
  }

  toggleAnnotated() {
    this.annotated = !this.annotated;
    this.show(this.index);
  }

  /** Select the next box on this keyframe (x). */
  selectNext() {
    const shown = this.shown();
    if (shown.length === 0) return;
    const at = shown.findIndex((d) => d.id === this.selectedId);
    this.selectedId = shown[(at + 1) % shown.length].id;
    this.drawBoxes();
  }

  select(id) {
    this.selectedId = id;
    this.drawBoxes();
  }

  /** A detection changed (corrected): redraw with its new values. */
  update(detection) {
    const at = this.detections.findIndex((d) => d.id === detection.id);
    if (at >= 0) this.detections[at] = { ...this.detections[at], ...detection };
    this.drawBoxes();
  }

  renderThumbs() {
    this.thumbs.replaceChildren();
    if (this.slides.length < 2) return;
    this.slides.forEach((slide, i) => {
      this.thumbs.append(
        h("button", { type: "button", onclick: () => this.show(i), title: `#${slide.frame}` }, h("img", { src: slide.url, alt: `#${slide.frame}`, loading: "lazy" })),
      );
    });
  }

  size() {
    return this.sizes.get(this.img.currentSrc || this.img.src) || null;
  }

  drawBoxes() {
    const size = this.size();
    this.svg.replaceChildren();
    this.tags.replaceChildren();
    if (!size) return;
    const [w, hgt] = size;
    this.svg.setAttribute("viewBox", `0 0 ${w} ${hgt}`);
    this.frameEl.dataset.width = String(w);
    this.frameEl.dataset.height = String(hgt);
    const selected = this.selected();
    for (const d of this.shown()) {
      const fixed = Array.isArray(d.corrected_box);
      const box = fixed ? d.corrected_box : d.box;
      if (fixed) this.svg.append(rect(d.box, "box original"));
      const r = rect(box, `box${fixed ? " fixed" : ""}${selected && selected.id === d.id ? " selected" : ""}`);
      r.setAttribute("data-testid", "det-box");
      r.setAttribute("data-id", String(d.id));
      r.addEventListener("pointerdown", (e) => {
        if (this.drawing) return;
        e.stopPropagation();
        this.select(d.id);
      });
      this.svg.append(r);
      const label = d.corrected_label && d.corrected_label !== d.label ? `${d.label} → ${d.corrected_label}` : d.label;
      this.tags.append(
        h(
          "div",
          { class: "tag" + (fixed || d.corrected_label ? " fixed" : ""), style: `left:${(box[0] / w) * 100}%;top:${(box[1] / hgt) * 100}%` },
          `${label} ${Number(d.score).toFixed(2)}`,
        ),
      );
    }
  }

  /** Let the officer drag a new box for the selected detection; Esc (cancelDraw) stops. */
  startDraw() {
    if (!this.onDrawn || !this.selected()) return false;
    this.drawing = true;
    this.frameEl.classList.add("drawing");
    this.banner.textContent = t("review_draw_hint");
    this.banner.hidden = false;
    return true;
  }

  cancelDraw() {
    this.drawing = false;
    this.frameEl.classList.remove("drawing");
    this.banner.hidden = true;
    this.svg.querySelector(".draft")?.remove();
  }

  /** The keyframe pixel under a pointer (the overlay stretches the keyframe's pixels over its box). */
  toImage(event) {
    const rect = this.svg.getBoundingClientRect();
    const [w, hgt] = this.size();
    const x = ((event.clientX - rect.left) / rect.width) * w;
    const y = ((event.clientY - rect.top) / rect.height) * hgt;
    return [Math.min(Math.max(x, 0), w), Math.min(Math.max(y, 0), hgt)];
  }

  bindDrawing() {
    let start = null;
    let draft = null;
    this.svg.addEventListener("pointerdown", (e) => {
      if (!this.drawing || !this.size()) return;
      e.preventDefault();
      this.svg.setPointerCapture(e.pointerId);
      start = this.toImage(e);
      draft = rect([...start, ...start], "box draft");
      draft.setAttribute("data-testid", "draft-box");
      this.svg.append(draft);
    });
    this.svg.addEventListener("pointermove", (e) => {
      if (!start) return;
      const [x, y] = this.toImage(e);
      setRect(draft, [Math.min(start[0], x), Math.min(start[1], y), Math.max(start[0], x), Math.max(start[1], y)]);
    });
    const finish = (e) => {
      if (!start) return;
      const [x, y] = this.toImage(e);
      const box = [Math.min(start[0], x), Math.min(start[1], y), Math.max(start[0], x), Math.max(start[1], y)].map(
        (v) => Math.round(v * 10) / 10,
      );
      start = null;
      if (box[2] - box[0] < MIN_BOX || box[3] - box[1] < MIN_BOX) {
        draft?.remove();
        return;
      }
      const target = this.selected();
      this.cancelDraw();
      if (target) this.onDrawn(target, box);
    };
    this.svg.addEventListener("pointerup", finish);
    this.svg.addEventListener("pointercancel", () => {
      start = null;
      draft?.remove();
    });
  }
}

function rect(box, cls) {
  const r = document.createElementNS(SVG_NS, "rect");
  r.setAttribute("class", cls);
  setRect(r, box);
  return r;
}

function setRect(r, [x1, y1, x2, y2]) {
  r.setAttribute("x", x1);
  r.setAttribute("y", y1);
  r.setAttribute("width", Math.max(0, x2 - x1));
  r.setAttribute("height", Math.max(0, y2 - y1));
}
