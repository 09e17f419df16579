// The box editor of a detection image: draw (drag on the image), move (drag a box), resize (drag
// its corner), delete (Delete key). Boxes are fractions of the image, as the regions API takes them.
import { api } from "./api.js";
import { h } from "./dom.js";

const MIN = 0.01;
const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

export class RegionEditor {
  constructor({ projectId, tags, currentTag, onError, onChange }) {
    Object.assign(this, { projectId, tags, currentTag, onError, onChange });
    this.image = null;
    this.selected = null;
    this.img = h("img", { alt: "", draggable: false });
    this.root = h("div", { class: "editor", tabindex: "0", "aria-label": "Image with boxes: drag to draw a box" }, this.img);
    this.root.addEventListener("pointerdown", (e) => this.down(e));
  }

  show(image) {
    this.image = image;
    this.selected = null;
    this.img.alt = `Image ${image.id}`;
    this.img.src = image.resizedImageUri || image.originalImageUri;
    this.render();
  }

  tagName(id) { return (this.tags.find((t) => t.id === id) || {}).name || "?"; }

  render() {
    this.root.querySelectorAll(".box").forEach((b) => b.remove());
    for (const r of this.image.regions || []) {
      const box = h("div", { class: "box" + (r === this.selected ? " selected" : ""), "data-region": r.regionId },
        h("span", {}, this.tagName(r.tagId)), h("div", { class: "handle" }));
      this.place(box, r);
      box.region = r;
      this.root.append(box);
    }
  }

  place(el, r) {
    Object.assign(el.style, { left: `${100 * r.left}%`, top: `${100 * r.top}%`, width: `${100 * r.width}%`, height: `${100 * r.height}%` });
  }

  point(e) {
    const rect = this.img.getBoundingClientRect();
    return { x: clamp((e.clientX - rect.left) / rect.width, 0, 1), y: clamp((e.clientY - rect.top) / rect.height, 0, 1) };
  }

  down(e) {
    if (e.button !== 0 || !this.image) return;
    e.preventDefault();
    this.root.focus();
    const start = this.point(e);
    const boxEl = e.target.closest(".box");
    let mode = "draw", region = null, ghost;
    if (boxEl) {
      region = boxEl.region;
      mode = e.target.classList.contains("handle") ? "resize" : "move";
      this.selected = region;
      this.render();
      ghost = this.root.querySelector(`[data-region="${region.regionId}"]`);
    } else {
      this.selected = null;
      this.render();
      ghost = h("div", { class: "box selected" });
      this.root.append(ghost);
    }
    const origin = region ? { ...region } : null;
    let shape = null;
    const move = (ev) => {
      const p = this.point(ev);
      if (mode === "draw") shape = { left: Math.min(start.x, p.x), top: Math.min(start.y, p.y), width: Math.abs(p.x - start.x), height: Math.abs(p.y - start.y) };
      else if (mode === "move") shape = { ...origin, left: clamp(origin.left + p.x - start.x, 0, 1 - origin.width), top: clamp(origin.top + p.y - start.y, 0, 1 - origin.height) };
      else shape = { ...origin, width: clamp(p.x - origin.left, MIN, 1 - origin.left), height: clamp(p.y - origin.top, MIN, 1 - origin.top) };
      this.place(ghost, shape);
    };
    const up = async () => {
      window.removeEventListener("pointermove", move);
      window.removeEventListener("pointerup", up);
      if (!shape || shape.width < MIN || shape.height < MIN) { this.render(); return; }
      if (mode === "draw") await this.save(null, { ...shape, tagId: this.currentTag() });
      else await this.save(region, { ...shape, tagId: region.tagId });
    };
    window.addEventListener("pointermove", move);
    window.addEventListener("pointerup", up);
  }

  // the API has no region update: a moved, resized or retagged box is deleted and created again
  async save(old, shape) {
    if (!shape.tagId) { this.onError("Create a tag first: every box needs a tag."); this.render(); return; }
    try {
      if (old) await api.deleteRegions(this.projectId, [old.regionId]);
      const { left, top, width, height, tagId } = shape;
      const summary = await api.addRegions(this.projectId, [{ imageId: this.image.id, tagId, left, top, width, height }]);
      const created = (summary.created || [])[0];
      this.image.regions = (this.image.regions || []).filter((r) => r !== old);
      if (created) this.image.regions.push(created);
      this.selected = created || null;
      this.onError("");
      this.onChange();
    } catch (e) {
      this.onError(`The box was not saved: ${e.words || e.message}`);
    }
    this.render();
  }

  async removeSelected() {
    const r = this.selected;
    if (!r) return;
    try {
      await api.deleteRegions(this.projectId, [r.regionId]);
      this.image.regions = this.image.regions.filter((x) => x !== r);
      this.selected = null;
      this.onError("");
      this.onChange();
    } catch (e) {
      this.onError(`The box was not deleted: ${e.words || e.message}`);
    }
    this.render();
  }

  async retagSelected(tagId) {
    if (this.selected && this.selected.tagId !== tagId) await this.save(this.selected, { ...this.selected, tagId });
  }
}
