// Performance extras of a Custom Vision iteration: the precision-recall curve (the API's own
// figures at several thresholds, so detection matching stays the server's), a confusion matrix for
// classifiers and the held-out images the model got wrong (from get_image_performances).
import { api } from "./api.js";
import { h, pct } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const COLOURS = ["#0b5cad", "#c2410c", "#15803d", "#7e22ce", "#b91c1c", "#0e7490", "#a16207", "#be185d"];
export const CURVE_THRESHOLDS = Array.from({ length: 19 }, (_, i) => +(0.05 * (i + 1)).toFixed(2));
const TAKE = 256; // get_image_performances' largest page

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of children.flat(Infinity)) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

// a few requests at a time: the figures at each threshold, in threshold order
export async function curvePoints(projectId, iterationId, overlap) {
  const out = new Array(CURVE_THRESHOLDS.length);
  let next = 0;
  const worker = async () => {
    while (next < CURVE_THRESHOLDS.length) {
      const i = next++;
      const perf = await api.performance(projectId, iterationId, CURVE_THRESHOLDS[i], overlap);
      out[i] = { threshold: CURVE_THRESHOLDS[i], precision: perf.precision, recall: perf.recall,
        tags: Object.fromEntries((perf.perTagPerformance || []).map((t) => [t.name, { precision: t.precision, recall: t.recall }])) };
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return out;
}

// An SVG chart (recall across, precision up), overall in bold and one thin line per tag, the point
// at the slider's threshold ringed; a table of the same figures for screen readers and exact values.
export function prCurve(points, current) {
  // a threshold where nothing is predicted has no precision (the API says 0): not a point of the curve
  points = points.filter((pt) => pt.precision > 0 || pt.recall > 0);
  if (!points.length) return h("p", {}, "Nothing is predicted at any threshold: no curve to draw.");
  const W = 360, H = 260, L = 44, B = 36, T = 10, R = 18;
  const x = (r) => L + r * (W - L - R), y = (p) => T + (1 - p) * (H - T - B);
  const line = (get) => points.map((pt) => get(pt)).filter((xy) => xy && (xy[0] > 0 || xy[1] > 0)).map(([r, p]) => `${x(r).toFixed(1)},${y(p).toFixed(1)}`).join(" ");
  const tagNames = Object.keys(points[0] ? points[0].tags : {}).slice(0, COLOURS.length - 1);
  const near = points.reduce((a, b) => (Math.abs(b.threshold - current) < Math.abs(a.threshold - current) ? b : a), points[0]);
  const grid = [0, 0.25, 0.5, 0.75, 1];
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-labelledby": "pr-title", id: "pr-curve" },
    s("title", { id: "pr-title" }, `Precision-recall curve over ${points.length} thresholds`),
    grid.map((g) => [s("line", { x1: x(0), x2: x(1), y1: y(g), y2: y(g), class: "gridline" }),
      s("line", { x1: x(g), x2: x(g), y1: y(0), y2: y(1), class: "gridline" }),
      s("text", { x: L - 6, y: y(g) + 4, "text-anchor": "end" }, `${g * 100}%`),
      s("text", { x: x(g), y: H - B + 16, "text-anchor": "middle" }, `${g * 100}%`)]),
    s("text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle" }, "Recall"),
    s("text", { x: 12, y: (T + H - B) / 2, "text-anchor": "middle", transform: `rotate(-90 12 ${(T + H - B) / 2})` }, "Precision"),
    tagNames.map((name, i) => s("polyline", { points: line((pt) => pt.tags[name] && [pt.tags[name].recall, pt.tags[name].precision]),
      fill: "none", stroke: COLOURS[i + 1], "stroke-width": "1.5", "stroke-dasharray": "4 2", class: "tag-line" })),
    s("polyline", { points: line((pt) => [pt.recall, pt.precision]), fill: "none", stroke: COLOURS[0], "stroke-width": "3", class: "overall-line" }),
    points.map((pt) => s("circle", { cx: x(pt.recall), cy: y(pt.precision), r: "2.5", fill: COLOURS[0] },
      s("title", {}, `threshold ${pct(pt.threshold)}: precision ${pct(pt.precision)}, recall ${pct(pt.recall)}`))),
    near ? s("circle", { cx: x(near.recall), cy: y(near.precision), r: "7", fill: "none", stroke: "#ff9f1c", "stroke-width": "3", class: "current" }) : "");
  const legend = h("ul", { class: "legend" }, ["All tags", ...tagNames].map((name) => h("li", {}, h("span", { class: "swatch" }), name)));
  // the CSP refuses style attributes; the CSSOM property is allowed
  legend.querySelectorAll(".swatch").forEach((el, i) => { el.style.background = COLOURS[i]; });
  const table = h("details", {}, h("summary", {}, "The curve's figures"),
    h("table", { class: "compact" }, h("thead", {}, h("tr", {}, h("th", {}, "Threshold"), h("th", {}, "Precision"), h("th", {}, "Recall"))),
      h("tbody", {}, points.map((pt) => h("tr", {}, h("td", {}, pct(pt.threshold)), h("td", {}, pct(pt.precision)), h("td", {}, pct(pt.recall)))))));
  return h("div", { class: "chart-box" }, svg, legend, table);
}

export async function imagePerformances(projectId, iterationId) {
  const out = [];
  for (let skip = 0; skip < 40 * TAKE; skip += TAKE) {
    const page = await api.imagePerformances(projectId, iterationId, { take: TAKE, skip });
    out.push(...page);
    if (page.length < TAKE) break;
  }
  return out;
}

const NONE = "(none)";
// what the model says about a classified image at the threshold: the top tag for multiclass, every
// tag at or above it for multilabel; nothing at or above it is "(none)"
function predictedTags(image, threshold, multilabel) {
  const above = (image.predictions || []).filter((p) => p.probability >= threshold).map((p) => p.tagName);
  return multilabel ? above : above.slice(0, 1);
}
const trueTags = (image) => (image.tags || []).map((t) => t.tagName);

// rows: true tag; columns: predicted tag. Multilabel: an image counts in every (true, predicted) cell.
export function confusionMatrix(images, tags, threshold, multilabel) {
  const names = tags.map((t) => t.name);
  const cols = [...names, NONE];
  const counts = new Map(names.map((n) => [n, new Map(cols.map((c) => [c, 0]))]));
  for (const image of images) {
    const predicted = predictedTags(image, threshold, multilabel);
    for (const truth of trueTags(image)) {
      const row = counts.get(truth);
      if (!row) continue;
      for (const p of predicted.length ? predicted : [NONE]) row.set(p, (row.get(p) || 0) + 1);
    }
  }
  const max = Math.max(1, ...[...counts.values()].flatMap((row) => [...row.values()]));
  return h("table", { class: "matrix", id: "confusion-matrix" },
    h("caption", {}, `Confusion matrix at ${pct(threshold)} over ${images.length} held-out images: rows are the true tags, columns what the model predicted`
      + (multilabel ? " (multilabel: an image counts once per true and predicted tag pair)" : "")),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "True \\ predicted"), cols.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, names.map((n) => h("tr", {}, h("th", { scope: "row" }, n), cols.map((c) => {
      const v = counts.get(n).get(c);
      const cell = h("td", { class: c === n ? "diag" : v ? "off" : "" }, String(v));
      cell.style.setProperty("--heat", (v / max).toFixed(2));
      return cell;
    })))));
}

function iou(a, b) {
  const ix = Math.max(0, Math.min(a.left + a.width, b.left + b.width) - Math.max(a.left, b.left));
  const iy = Math.max(0, Math.min(a.top + a.height, b.top + b.height) - Math.max(a.top, b.top));
  const inter = ix * iy;
  return inter / (a.width * a.height + b.width * b.height - inter || 1);
}

// Detection: detections at or above the threshold, best first, each matched to an unmatched true
// box of its tag with IoU at least `overlap` (the API's rule); anything unmatched makes it wrong.
function detectionMistakes(image, threshold, overlap) {
  const truth = (image.regions || []).map((r) => ({ ...r, matched: false }));
  const found = (image.predictions || []).filter((p) => p.boundingBox && p.probability >= threshold);
  let extra = 0;
  for (const p of found) {
    const hit = truth.find((t) => !t.matched && t.tagId === p.tagId && iou(t, p.boundingBox) >= overlap);
    if (hit) hit.matched = true; else extra++;
  }
  return { wrong: extra > 0 || truth.some((t) => !t.matched), truth, found };
}

export function wrongImages(images, threshold, overlap, detection, multilabel, limit = 24) {
  const wrong = [];
  for (const image of images) {
    if (detection) {
      const m = detectionMistakes(image, threshold, overlap);
      if (m.wrong) wrong.push({ image, truth: m.truth, found: m.found });
    } else {
      const expected = trueTags(image).sort(), predicted = predictedTags(image, threshold, multilabel).sort();
      if (expected.join("\n") !== predicted.join("\n")) wrong.push({ image, expected, predicted });
    }
  }
  const cards = wrong.slice(0, limit).map(({ image, truth, found, expected, predicted }, i) => {
    const img = h("img", { src: image.thumbnailUri || image.imageUri, alt: `Held-out image ${i + 1}`, loading: "lazy", width: String(image.width), height: String(image.height) });
    const frame = h("div", { class: "result mini" }, img);
    // the frame keeps the image's shape before it loads: no layout jump
    frame.style.aspectRatio = `${image.width} / ${image.height}`;
    const place = (el, b) => Object.assign(el.style, { left: `${100 * b.left}%`, top: `${100 * b.top}%`, width: `${100 * b.width}%`, height: `${100 * b.height}%` });
    const caption = [];
    if (detection) {
      for (const t of truth) { const el = h("div", { class: "box expected" + (t.matched ? "" : " missed") }, h("span", {}, t.tagName || "?")); place(el, t); frame.append(el); }
      for (const p of found) { const el = h("div", { class: "box predicted" }, h("span", {}, `${p.tagName} ${pct(p.probability)}`)); place(el, p.boundingBox); frame.append(el); }
      caption.push(`Expected ${truth.length} boxes (${truth.filter((t) => !t.matched).length} missed); predicted ${found.length}.`);
    } else {
      caption.push(`Expected: ${expected.join(", ") || NONE}. Predicted: ${predicted.join(", ") || NONE}.`);
    }
    return h("figure", { class: "wrong" }, frame, h("figcaption", {}, caption));
  });
  return h("div", { id: "wrong-images" },
    h("p", {}, wrong.length ? `${wrong.length} of ${images.length} held-out images are wrong at ${pct(threshold)}` + (wrong.length > limit ? ` (the first ${limit} shown)` : "") + "."
      : `No held-out image is wrong at ${pct(threshold)} (${images.length} held out).`),
    detection && wrong.length ? h("p", { class: "key" }, h("span", { class: "key-expected" }, "solid: expected box"), " ", h("span", { class: "key-predicted" }, "dashed: predicted box")) : "",
    h("div", { class: "grid wide-cells" }, cards));
}
