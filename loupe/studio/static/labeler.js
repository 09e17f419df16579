// The smart labeler: a trained iteration's suggestions for the untagged images, most uncertain
// first (POST .../images/suggested), each accepted as tags or boxes in one action.
import { api } from "./api.js";
import { errorLine, field, h, pct } from "./dom.js";

const SHOWN = 24;
const words = (e) => e.words || e.message;

export async function labelerTab(body, project, iterations, detection) {
  const multilabel = project.settings.classificationType === "Multilabel";
  const error = errorLine();
  const notice = h("p", { class: "notice", role: "status" });
  const pick = h("select");
  const floor = h("input", { type: "range", min: "0.05", max: "0.95", step: "0.05", value: "0.5" });
  const fv = h("output", {}, "50%");
  const grid = h("div", { class: "grid wide-cells", id: "suggestions", "aria-label": "Suggestions" });
  const acceptAll = h("button", { type: "button", disabled: true }, "Accept all shown suggestions");
  pick.replaceChildren(...iterations.filter((it) => it.status === "Completed").map((it) => h("option", { value: it.id }, it.name)));
  let cards = [];

  // what one card would apply: its checked tags (classification) or boxes (detection)
  function card(s, index) {
    const preds = s.predictions || [];
    const img = h("img", { src: s.thumbnailUri, alt: `Untagged image ${index + 1}`, loading: "lazy", width: String(s.width), height: String(s.height) });
    const frame = h("div", { class: "result mini" }, img);
    frame.style.aspectRatio = `${s.width} / ${s.height}`; // no jump while the thumbnail loads
    const choices = [];
    if (detection) {
      preds.filter((p) => p.boundingBox && p.probability >= +floor.value).forEach((p, i) => {
        const b = p.boundingBox;
        const box = h("div", { class: "box predicted" }, h("span", {}, `${i + 1} ${p.tagName}`));
        Object.assign(box.style, { left: `${100 * b.left}%`, top: `${100 * b.top}%`, width: `${100 * b.width}%`, height: `${100 * b.height}%` });
        frame.append(box);
        choices.push({ input: h("input", { type: "checkbox", checked: true }), label: `Box ${i + 1}: ${p.tagName} ${pct(p.probability)}`, p });
      });
    } else {
      const ranked = preds.slice(0, multilabel ? 8 : 3);
      const group = `pick-${s.id}`;
      ranked.forEach((p, i) => choices.push({ p, label: `${p.tagName} ${pct(p.probability)}`,
        input: h("input", multilabel ? { type: "checkbox", checked: p.probability >= +floor.value } : { type: "radio", name: group, checked: i === 0 }) }));
    }
    const accept = h("button", { type: "button", "aria-label": `Accept the suggestion for image ${index + 1}` }, "Accept");
    const skip = h("button", { type: "button", class: "secondary", "aria-label": `Skip image ${index + 1}` }, "Skip");
    const cardError = h("p", { class: "error", role: "alert" });
    const el = h("figure", { class: "wrong suggestion", "data-image": s.id }, frame,
      h("figcaption", {}, h("p", {}, `Uncertainty ${pct(s.predictionUncertainty)}`),
        h("fieldset", {}, h("legend", {}, detection ? "Boxes to add" : "Tags to apply"),
          choices.length ? choices.map((c) => h("div", {}, ...field(c.label, c.input))) : h("p", {}, "Nothing above the floor.")),
        h("div", { class: "row" }, accept, skip), cardError));
    const entry = { el, s, choices, cardError };
    accept.addEventListener("click", () => apply([entry]));
    skip.addEventListener("click", () => { el.remove(); cards = cards.filter((c) => c !== entry); });
    return entry;
  }

  // tags and boxes of several cards in as few requests as the API allows
  async function apply(entries) {
    const tagPairs = [], regions = [];
    for (const { s, choices } of entries) {
      for (const c of choices.filter((c) => c.input.checked)) {
        if (detection) regions.push({ imageId: s.id, tagId: c.p.tagId, ...c.p.boundingBox });
        else tagPairs.push({ imageId: s.id, tagId: c.p.tagId });
      }
    }
    error.textContent = "";
    try {
      for (let i = 0; i < tagPairs.length; i += 64) await api.tagImages(project.id, tagPairs.slice(i, i + 64));
      for (let i = 0; i < regions.length; i += 64) await api.addRegions(project.id, regions.slice(i, i + 64));
      for (const e of entries) e.el.remove();
      cards = cards.filter((c) => !entries.includes(c));
      notice.textContent = `${entries.length} image${entries.length === 1 ? "" : "s"} labelled.`; // role=status: announced
      if (!cards.length) await load();
    } catch (err) {
      const target = entries.length === 1 ? entries[0].cardError : error;
      target.textContent = `The suggestion was not applied: ${words(err)}`;
    }
  }

  async function load() {
    if (!pick.value) { error.textContent = "No trained iteration yet: train the project first."; return; }
    error.textContent = "";
    grid.replaceChildren(h("p", {}, "Scoring the untagged images..."));
    try {
      const answer = await api.suggested(project.id, pick.value, { sortBy: "UncertaintyDescending", maxCount: SHOWN });
      cards = answer.results.map(card);
      grid.replaceChildren(...(cards.length ? cards.map((c) => c.el) : [h("p", {}, "No untagged image to suggest tags for.")]));
      acceptAll.disabled = !cards.length;
    } catch (err) {
      grid.replaceChildren();
      error.textContent = `The suggestions could not be read: ${words(err)}`;
    }
  }
  acceptAll.addEventListener("click", () => apply([...cards]));
  pick.addEventListener("change", load);
  floor.addEventListener("change", load);
  floor.addEventListener("input", () => { fv.textContent = pct(+floor.value).replace(".0%", "%"); });
  body.replaceChildren(h("section", { class: "card" }, h("h3", {}, "Smart labeler"),
    h("p", {}, "The untagged images the model is least sure about come first; accept its suggestion, correct it, or skip the image."),
    h("div", { class: "row" }, ...field("Iteration", pick), ...field(detection ? "Show boxes from" : "Preselect tags from", floor), fv, acceptAll),
    error, notice, grid));
  await load();
}
