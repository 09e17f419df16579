// Image Analysis 4.0 pages: datasets (with each validation problem at its place in the COCO file),
// models (status, progress, metrics), evaluations and a try-it page, through /computervision only.
import { vision } from "./api.js";
import { announce, errorLine, field, h, pct } from "./dom.js";

const words = (e) => e.words || e.message;
const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const POLL_MS = 2000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const TABS = ["datasets", "models", "evaluations", "try it"];

export async function showVision(view, setCrumbs, tab = "datasets", arg = null) {
  setCrumbs("Image Analysis");
  const bar = h("div", { class: "tabs", role: "tablist", "aria-label": "Image Analysis pages" }, TABS.map((t) =>
    h("button", { type: "button", role: "tab", "aria-selected": String(t === tab), onclick: () => showVision(view, setCrumbs, t) },
      t[0].toUpperCase() + t.slice(1))));
  const body = h("div", { id: "tab" });
  const go = (t, a) => showVision(view, setCrumbs, t, a);
  view.replaceChildren(h("h2", {}, "Image Analysis 4.0 custom models"), bar, body);
  await { datasets: datasetsPage, models: modelsPage, evaluations: evaluationsPage, "try it": tryItPage }[tab](body, go, arg);
}

// --- datasets
const STATUS_WORDS = { valid: "Valid", evaluationOnly: "Evaluation only", invalid: "Invalid" };
const statusBadge = (validation) => {
  const status = validation ? validation.status : "unvalidated";
  return h("span", { class: `badge ${status}` }, STATUS_WORDS[status] || "Not validated");
};

async function datasetsPage(body, go, openName) {
  const error = errorLine();
  const rows = h("tbody");
  const detail = h("section", { class: "card", id: "dataset-detail", hidden: true, "aria-live": "polite" });
  const name = h("input", { required: true, maxlength: "255", pattern: "[A-Za-z0-9][A-Za-z0-9_.\\-]*" });
  const kind = h("select", {}, h("option", { value: "imageClassification" }, "Classification"),
    h("option", { value: "imageObjectDetection" }, "Object detection"));
  const uris = h("textarea", { required: true, rows: "2", placeholder: "the blob URL of each COCO file, e.g. in the datasets container" });
  const sas = h("input", { type: "password", autocomplete: "off" });
  const formError = errorLine();
  const formProblems = h("div");
  const form = h("form", { "aria-label": "Dataset registration" },
    h("div", { class: "row" }, ...field("Dataset name", name), ...field("Annotation kind", kind)),
    h("div", { class: "row wide" }, ...field("COCO file URLs (one a line)", uris)),
    h("div", { class: "row" }, ...field("SAS token (optional)", sas), h("button", { type: "submit" }, "Register dataset")),
    formError, formProblems);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    formError.textContent = "";
    formProblems.replaceChildren();
    const files = uris.value.split("\n").map((u) => u.trim()).filter(Boolean);
    const request = { annotationKind: kind.value, annotationFileUris: files };
    if (sas.value.trim()) request.authentication = { kind: "sas", sasToken: sas.value.trim() };
    try {
      const created = await vision.registerDataset(name.value.trim(), request);
      announce(`Dataset ${created.name} registered`);
      await list();
      await open(created.name);
    } catch (err) {
      formError.textContent = `The dataset was not registered: ${words(err)}`;
      // a broken COCO file is refused with one detail per problem, each naming its place
      if (err.details && err.details.length) formProblems.replaceChildren(problemTree(err.details, files, "error"));
    }
  });

  async function list() {
    error.textContent = "";
    let datasets;
    try { datasets = await vision.datasets(); } catch (err) { error.textContent = `The datasets could not be listed: ${words(err)}`; return; }
    rows.replaceChildren(...(datasets.length ? datasets.map((d) => {
      const val = d.validation;
      return h("tr", { "data-dataset": d.name },
        h("td", {}, h("a", { href: "#", onclick: (e) => { e.preventDefault(); open(d.name); } }, d.name)),
        h("td", {}, d.annotationKind === "imageObjectDetection" ? "Detection" : "Classification"),
        h("td", {}, statusBadge(val)),
        h("td", {}, val ? String(val.imageCount) : "-"),
        h("td", {}, val ? `${val.errorCount} / ${val.warningCount}` : "-"),
        h("td", {}, h("button", { type: "button", class: "secondary", onclick: () => open(d.name), "aria-label": `Open ${d.name}` }, "Open")));
    }) : [h("tr", {}, h("td", { colspan: "6" }, "No dataset yet: register one above, or drop a folder with a COCO file into the datasets container."))]));
  }

  async function open(datasetName) {
    detail.hidden = false;
    detail.replaceChildren(h("p", {}, `Loading ${datasetName}...`));
    let d;
    try { d = await vision.dataset(datasetName); }
    catch (err) { detail.replaceChildren(h("p", { class: "error", role: "alert" }, `The dataset ${datasetName} could not be read: ${words(err)}`)); return; }
    const val = d.validation;
    const remove = async () => {
      if (!confirm(`Delete the registration of ${d.name}? Its files stay in storage.`)) return;
      try { await vision.deleteDataset(d.name); detail.hidden = true; announce(`Dataset ${d.name} deleted`); await list(); }
      catch (err) { detail.append(h("p", { class: "error", role: "alert" }, `The dataset was not deleted: ${words(err)}`)); }
    };
    detail.replaceChildren(h("h3", {}, `Dataset ${d.name} `, statusBadge(val)),
      h("p", {}, `${d.annotationKind}; updated ${new Date(d.updatedDateTime).toLocaleString()}`),
      h("ol", { class: "files", "aria-label": "COCO files" }, d.annotationFileUris.map((u) => h("li", {}, h("code", {}, u)))),
      val ? h("p", {}, `${val.imageCount} images, ${val.annotationCount} annotations, ${val.imagesChecked} images checked (${val.depth}); `
        + `${val.multilabel ? "multilabel" : "one label per image"}.`) : h("p", {}, "Not validated yet."),
      val && val.categories.length ? h("table", { class: "compact" }, h("caption", {}, "Categories"),
        h("thead", {}, h("tr", {}, h("th", {}, "Category"), h("th", {}, "Images"), h("th", {}, "Annotations"))),
        h("tbody", {}, val.categories.map((c) => h("tr", {}, h("td", {}, c.name), h("td", {}, String(c.imageCount)), h("td", {}, String(c.annotationCount)))))) : "",
      val && val.errors.length ? h("div", {}, h("h4", {}, `${val.errorCount} error${val.errorCount === 1 ? "" : "s"}`), problemTree(val.errors, d.annotationFileUris, "error")) : "",
      val && val.warnings.length ? h("div", {}, h("h4", {}, `${val.warningCount} warning${val.warningCount === 1 ? "" : "s"}`), problemTree(val.warnings, d.annotationFileUris, "warning")) : "",
      val && val.errorCount > val.errors.length ? h("p", {}, `Only the first ${val.errors.length} errors are listed.`) : "",
      h("div", { class: "row" }, h("button", { type: "button", class: "danger", onclick: remove }, "Delete registration")));
    detail.focus();
  }

  body.replaceChildren(
    h("section", { class: "card" }, h("h3", {}, "Register a dataset"),
      h("p", {}, "Or drop a folder with its COCO file and images into the datasets blob container: it registers itself under the folder's name."), form),
    h("section", { class: "card" }, h("h3", {}, "Datasets"), error,
      h("div", { class: "scroll" }, h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Kind"), h("th", {}, "Validation"),
        h("th", {}, "Images"), h("th", {}, "Errors / warnings"), h("th", {}, "Actions"))), rows))),
    detail);
  detail.tabIndex = -1;
  await list();
  if (openName) await open(openName);
}

// "annotationFileUris[0].annotations[17].bbox[2]" -> ["annotationFileUris", 0, "annotations", 17, "bbox", 2]
const parsePath = (target) => [...(target || "").matchAll(/([^.[\]]+)|\[(\d+)\]/g)].map((m) => (m[2] !== undefined ? +m[2] : m[1]));

// Each problem under its place: the file, then the COCO file's own structure (section, item, field),
// so "annotations > [2] > bbox" reads like the JSON it points into.
export function problemTree(problems, files, kind) {
  const root = { children: new Map(), problems: [] };
  for (const p of problems) {
    let path = parsePath(p.target);
    let node = root;
    if (path[0] === "annotationFileUris" && typeof path[1] === "number") {
      const key = `file:${path[1]}`;
      if (!node.children.has(key)) node.children.set(key, { label: `File ${path[1] + 1}: ${files[path[1]] || "(unknown)"}`, file: true, children: new Map(), problems: [] });
      node = node.children.get(key);
      path = path.slice(2);
    }
    for (const part of path) {
      const key = typeof part === "number" ? `#${String(part).padStart(9, "0")}` : `.${part}`;
      if (!node.children.has(key)) node.children.set(key, { label: typeof part === "number" ? `[${part}]` : part, children: new Map(), problems: [] });
      node = node.children.get(key);
    }
    node.problems.push(p);
  }
  const render = (node, depth) => h("ul", { class: depth ? "" : `tree ${kind}s`, "aria-label": depth ? null : `${kind}s by place in the COCO files` },
    node.problems.map((p) => h("li", { class: `problem ${kind}`, "data-target": p.target || "" },
      h("b", {}, p.code), ": ", p.message)),
    [...node.children.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, child]) =>
      h("li", { class: child.file ? "file" : "place" }, h("code", {}, child.label), render(child, depth + 1))));
  return render(root, 0);
}

// --- models
const metricsOf = (perf) => {
  if (!perf) return "-";
  if ("accuracyTop1" in perf) return `top-1 accuracy ${pct(perf.accuracyTop1)}, AP ${pct(perf.averagePrecision)}`;
  if ("meanAveragePrecision50" in perf) return `mAP@50 ${pct(perf.meanAveragePrecision50)}, mAP@30 ${pct(perf.meanAveragePrecision30)}`;
  return "-";
};

function progressCell(run) {
  if (TERMINAL.has(run.status)) return run.error ? h("span", { class: "error" }, `${run.error.code}: ${run.error.message}`) : "";
  const p = run.progress || { phase: run.status, percent: 0 };
  const eta = p.etaSeconds !== undefined ? `, about ${Math.ceil(p.etaSeconds)} s left` : "";
  return h("div", {}, h("progress", { max: "100", value: String(p.percent || 0), "aria-label": `${run.name} progress` }),
    h("span", {}, `${p.phase} ${Math.round(p.percent || 0)}%${eta}${p.message ? ` (${p.message})` : ""}`));
}

function perfTable(perf) {
  const tags = Object.entries((perf && perf.tagPerformance) || {});
  if (!tags.length) return "";
  return h("table", { class: "compact" }, h("caption", {}, "Per tag"),
    h("thead", {}, h("tr", {}, h("th", {}, "Tag"), h("th", {}, "Figure"))),
    h("tbody", {}, tags.map(([name, v]) => h("tr", {}, h("td", {}, name),
      h("td", {}, Object.entries(v).map(([k, x]) => `${k} ${pct(x)}`).join(", "))))));
}

async function modelsPage(body, go) {
  const error = errorLine();
  const rows = h("tbody");
  const detail = h("section", { class: "card", id: "model-detail", hidden: true, tabindex: "-1" });
  const name = h("input", { required: true, maxlength: "255" });
  const dataset = h("select", { required: true });
  const test = h("select");
  const budget = h("input", { type: "number", min: "1", max: "1344", value: "1", required: true });
  const modelKind = h("select", {}, h("option", { value: "" }, "From the dataset"),
    h("option", { value: "Generic-Classifier" }, "Classifier"), h("option", { value: "Generic-Detector" }, "Detector"));
  const formError = errorLine();
  const form = h("form", { "aria-label": "Model creation" },
    h("div", { class: "row" }, ...field("Model name", name), ...field("Training dataset", dataset), ...field("Test dataset", test)),
    h("div", { class: "row" }, ...field("Budget in hours", budget), ...field("Model kind", modelKind),
      h("button", { type: "submit" }, "Train model")), formError);
  try {
    const usable = await vision.datasets();
    dataset.replaceChildren(...usable.filter((d) => d.validation && d.validation.status === "valid").map((d) => h("option", { value: d.name }, d.name)));
    test.replaceChildren(h("option", { value: "" }, "None: a held-out split"),
      ...usable.filter((d) => d.validation && d.validation.status !== "invalid").map((d) => h("option", { value: d.name }, d.name)));
  } catch (err) { formError.textContent = `The datasets could not be listed: ${words(err)}`; }
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    formError.textContent = "";
    const request = { trainingParameters: { trainingDatasetName: dataset.value, timeBudgetInHours: +budget.value } };
    if (modelKind.value) request.trainingParameters.modelKind = modelKind.value;
    if (test.value) request.evaluationParameters = { testDatasetName: test.value };
    try { await vision.createModel(name.value.trim(), request); announce(`Model ${name.value} created`); await list(); }
    catch (err) { formError.textContent = `The model was not created: ${words(err)}`; }
  });

  let models = [];
  // rows by model name with the wire record they show: a refresh replaces only the rows whose model
  // changed, so keyboard focus and a reader's place survive the 2 s polling
  const shown = new Map();
  const modelRow = (m) => h("tr", { "data-model": m.name },
    h("td", {}, h("a", { href: "#", "data-focus": "open", onclick: (e) => { e.preventDefault(); open(m); } }, m.name)),
    h("td", { class: "model-status" }, m.status), h("td", {}, progressCell(m)),
    h("td", {}, m.trainingParameters.trainingDatasetName), h("td", { class: "model-metrics" }, metricsOf(m.modelPerformance)),
    h("td", { class: "row" }, h("button", { type: "button", class: "secondary", "data-focus": "details", onclick: () => open(m), "aria-label": `Details of ${m.name}` }, "Details"),
      m.status === "succeeded" ? h("button", { type: "button", class: "secondary", "data-focus": "try", onclick: () => go("try it", m.name), "aria-label": `Try ${m.name}` }, "Try it") : ""));
  async function list() {
    try { models = await vision.models(); error.textContent = ""; }
    catch (err) { error.textContent = `The models could not be listed: ${words(err)}`; return; }
    if (!models.length) { shown.clear(); rows.replaceChildren(h("tr", {}, h("td", { colspan: "6" }, "No model yet."))); return; }
    const focused = document.activeElement;
    const focusRow = focused && rows.contains(focused) ? focused.closest("tr") : null;
    const focusKey = focused && focused.dataset ? focused.dataset.focus : null;
    const next = models.map((m) => {
      const sig = JSON.stringify(m);
      const old = shown.get(m.name);
      return old && old.sig === sig ? old : { sig, el: modelRow(m) };
    });
    shown.clear();
    next.forEach((r, i) => shown.set(models[i].name, r));
    // move only what moved: a row already in its place is left alone (focus inside it stays)
    const want = next.map((r) => r.el);
    const keep = new Set(want);
    for (const el of [...rows.children]) if (!keep.has(el)) el.remove();
    want.forEach((el, i) => { if (rows.children[i] !== el) rows.insertBefore(el, rows.children[i] || null); });
    if (focusRow && !focusRow.isConnected) {
      // the focused row changed: the same control of its new row takes the focus back
      const again = rows.querySelector(`tr[data-model="${CSS.escape(focusRow.dataset.model)}"]`);
      const target = again && (again.querySelector(`[data-focus="${focusKey}"]`) || again.querySelector("[data-focus]"));
      if (target) target.focus();
    }
  }
  function open(m) {
    detail.hidden = false;
    const act = async (what, fn) => {
      try {
        await fn(m.name);
        announce(`${m.name} ${what}`);
        await list();
        const now = models.find((x) => x.name === m.name);
        if (now) open(now); else detail.hidden = true;
      }
      catch (err) { detail.append(h("p", { class: "error", role: "alert" }, `${m.name} was not ${what}: ${words(err)}`)); }
    };
    detail.replaceChildren(h("h3", {}, `Model ${m.name}: ${m.status}`),
      h("p", {}, `${m.trainingParameters.modelKind}, trained on ${m.trainingParameters.trainingDatasetName}`
        + (m.evaluationParameters ? `, tested on ${m.evaluationParameters.testDatasetName}` : ", tested on a held-out split")
        + `; budget ${m.trainingParameters.timeBudgetInHours} h, ${m.trainingCostInMinutes} min used.`),
      progressCell(m),
      m.modelPerformance ? h("dl", { class: "figures" }, Object.entries(m.modelPerformance).filter(([, x]) => typeof x === "number")
        .flatMap(([k, x]) => [h("dt", {}, k), h("dd", {}, pct(x))])) : "",
      perfTable(m.modelPerformance),
      h("div", { class: "row" },
        TERMINAL.has(m.status) ? h("button", { type: "button", class: "danger", onclick: () => confirm(`Delete the model ${m.name}?`) && act("deleted", vision.deleteModel) }, "Delete model")
          : h("button", { type: "button", class: "danger", onclick: () => act("cancelled", vision.cancelModel) }, "Cancel training"),
        m.status === "succeeded" ? h("button", { type: "button", class: "secondary", onclick: () => go("evaluations", m.name) }, "Evaluations") : ""));
    detail.focus();
  }
  body.replaceChildren(h("section", { class: "card" }, h("h3", {}, "Train a model"), form),
    h("section", { class: "card" }, h("h3", {}, "Models"), error,
      h("div", { class: "scroll" }, h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Status"), h("th", {}, "Progress"),
        h("th", {}, "Training dataset"), h("th", {}, "Performance"), h("th", {}, "Actions"))), rows))), detail);
  await list();
  pollWhile(rows, () => models.some((m) => !TERMINAL.has(m.status)), list);
}

// re-list every POLL_MS while something runs and the page is still shown (not awaited: the page is usable meanwhile)
async function pollWhile(anchor, running, refresh) {
  while (anchor.isConnected && running()) {
    await sleep(POLL_MS);
    if (anchor.isConnected) await refresh();
  }
}

// --- evaluations
async function evaluationsPage(body, go, modelName) {
  const error = errorLine();
  const pick = h("select");
  const rows = h("tbody");
  const name = h("input", { required: true, maxlength: "255" });
  const test = h("select", { required: true });
  const formError = errorLine();
  try {
    const [models, datasets] = await Promise.all([vision.models(), vision.datasets()]);
    pick.replaceChildren(...models.filter((m) => m.status === "succeeded").map((m) => h("option", { value: m.name }, m.name)));
    if (modelName) pick.value = modelName;
    test.replaceChildren(...datasets.filter((d) => d.validation && d.validation.status !== "invalid").map((d) => h("option", { value: d.name }, d.name)));
  } catch (err) { error.textContent = `The models or datasets could not be listed: ${words(err)}`; }
  const form = h("form", { class: "row", "aria-label": "Evaluation creation" }, ...field("Evaluation name", name),
    ...field("Test dataset", test), h("button", { type: "submit" }, "Evaluate"));
  let evaluations = [];
  async function list() {
    if (!pick.value) { rows.replaceChildren(h("tr", {}, h("td", { colspan: "4" }, "No trained model yet."))); return; }
    try { evaluations = await vision.evaluations(pick.value); error.textContent = ""; }
    catch (err) { error.textContent = `The evaluations could not be listed: ${words(err)}`; return; }
    rows.replaceChildren(...(evaluations.length ? evaluations.map((ev) => h("tr", { "data-evaluation": ev.name },
      h("td", {}, ev.name), h("td", {}, ev.status), h("td", {}, ev.evaluationParameters.testDatasetName),
      h("td", {}, ev.error ? h("span", { class: "error" }, `${ev.error.code}: ${ev.error.message}`) : [metricsOf(ev.modelPerformance), perfTable(ev.modelPerformance)])))
      : [h("tr", {}, h("td", { colspan: "4" }, "No evaluation of this model yet."))]));
  }
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    formError.textContent = "";
    try { await vision.createEvaluation(pick.value, name.value.trim(), test.value); announce(`Evaluation ${name.value} started`); await poll(); }
    catch (err) { formError.textContent = `The evaluation was not started: ${words(err)}`; }
  });
  async function poll() {
    await list();
    pollWhile(rows, () => evaluations.some((ev) => !TERMINAL.has(ev.status)), list);
  }
  pick.addEventListener("change", list);
  body.replaceChildren(h("section", { class: "card" }, h("h3", {}, "Evaluations"),
    h("div", { class: "row" }, ...field("Model", pick)), form, formError, error,
    h("div", { class: "scroll" }, h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Status"), h("th", {}, "Test dataset"),
      h("th", {}, "Performance"))), rows))));
  await poll();
}

// --- try it: imageanalysis:analyze
async function tryItPage(body, go, modelName) {
  const error = errorLine();
  const pick = h("select");
  const input = h("input", { type: "file", accept: "image/*" });
  const threshold = h("input", { type: "range", min: "0", max: "1", step: "0.05", value: "0.3" });
  const tv = h("output", {}, "30%");
  const out = h("div", { id: "analysis" });
  try {
    const models = (await vision.models()).filter((m) => m.status === "succeeded");
    pick.replaceChildren(...models.map((m) => h("option", { value: m.name }, m.name)));
    if (modelName) pick.value = modelName;
    if (!models.length) error.textContent = "No trained model yet: train one on the Models page.";
  } catch (err) { error.textContent = `The models could not be listed: ${words(err)}`; }
  let last = null;
  function draw() {
    tv.textContent = pct(+threshold.value).replace(".0%", "%");
    if (!last) return;
    const { result, img } = last;
    const custom = result.customModelResult || {};
    const meta = result.metadata;
    const frame = h("div", { class: "result" }, img);
    const rows = [];
    if (custom.objectsResult) {
      for (const o of custom.objectsResult.values) {
        const best = o.tags[0] || { name: "?", confidence: 0 };
        if (best.confidence < +threshold.value) continue;
        const b = o.boundingBox;
        const box = h("div", { class: "box" }, h("span", {}, `${best.name} ${pct(best.confidence)}`));
        // pixels of the image the API describes in metadata: as fractions, they follow the shown size
        Object.assign(box.style, { left: `${(100 * b.x) / meta.width}%`, top: `${(100 * b.y) / meta.height}%`,
          width: `${(100 * b.w) / meta.width}%`, height: `${(100 * b.h) / meta.height}%` });
        frame.append(box);
        rows.push(h("tr", {}, h("td", {}, best.name), h("td", {}, pct(best.confidence)), h("td", {}, `${b.x}, ${b.y}, ${b.w} x ${b.h}`)));
      }
    }
    const tags = (custom.tagsResult && custom.tagsResult.values) || [];
    out.replaceChildren(frame, h("p", {}, `Model version ${result.modelVersion}; image ${meta.width} x ${meta.height} px.`),
      custom.objectsResult ? h("table", { id: "objects" }, h("caption", {}, `${rows.length} objects at or above the threshold`),
        h("thead", {}, h("tr", {}, h("th", {}, "Tag"), h("th", {}, "Confidence"), h("th", {}, "Box (px)"))), h("tbody", {}, rows))
        : h("table", { id: "tags" }, h("caption", {}, "Tags"), h("thead", {}, h("tr", {}, h("th", {}, "Tag"), h("th", {}, "Confidence"))),
          h("tbody", {}, tags.map((t) => h("tr", { class: t.confidence >= +threshold.value ? "hit" : "" }, h("td", {}, t.name),
            h("td", {}, h("meter", { min: "0", max: "1", value: String(t.confidence), "aria-label": `${t.name} confidence` }), ` ${pct(t.confidence)}`))))));
  }
  input.addEventListener("change", async () => {
    const file = input.files[0];
    if (!file || !pick.value) { if (!pick.value) error.textContent = "Pick a trained model first."; return; }
    error.textContent = "";
    out.replaceChildren(h("p", {}, "Analyzing..."));
    try {
      const result = await vision.analyze(pick.value, file);
      const img = h("img", { src: URL.createObjectURL(file), alt: "The analyzed image" });
      await img.decode().catch(() => {}); // its size is known before it is shown: no layout jump
      last = { result, img };
      draw();
      const values = (result.customModelResult.tagsResult || result.customModelResult.objectsResult || { values: [] }).values;
      announce(`${values.length} results from ${pick.value}`);
    } catch (err) {
      out.replaceChildren();
      error.textContent = `The analysis failed: ${words(err)}`;
    }
  });
  threshold.addEventListener("input", draw);
  body.replaceChildren(h("section", { class: "card" }, h("h3", {}, "Try a model"),
    h("p", {}, "Runs POST /computervision/imageanalysis:analyze?model-name=<model>, as an application would."),
    h("div", { class: "row" }, ...field("Model", pick), ...field("Image to analyze", input)),
    h("div", { class: "row" }, ...field("Show from confidence", threshold), tv), error, out));
}
