// Loupe Studio: projects, images, boxes, training, performance, quick test and publishing, all
// through Loupe's public Custom Vision API (api.js). No framework: each view rebuilds its section.
import { api, session, vision } from "./api.js";
import { announce, errorLine, field, h, noticeLine, pct } from "./dom.js";
import { exportPanel } from "./exports.js";
import { labelerTab } from "./labeler.js";
import { confusionMatrix, curvePoints, imagePerformances, prCurve, wrongImages } from "./insights.js";
import { RegionEditor } from "./regions.js";
import { showVision } from "./vision.js";

const PAGE = 24;
const BATCH = 64; // images per upload request (docs/customvision.md#limits)
const view = document.getElementById("view");
const crumbs = document.getElementById("crumbs");
const state = { domains: [], project: null, tags: [], tab: "images", iterations: [] };
const words = (e) => e.words || e.message;

// --- sign in
const signin = document.getElementById("signin");
document.getElementById("signin-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const key = document.getElementById("key").value.trim();
  const out = document.getElementById("signin-error");
  out.textContent = "";
  try {
    await api.checkKey(key);
    session.key = key;
    document.getElementById("key").value = "";
    await start();
  } catch (err) {
    out.textContent = words(err);
  }
});
document.getElementById("signout").addEventListener("click", () => {
  session.key = "";
  location.reload();
});

// the two areas: Custom Vision projects and the Image Analysis 4.0 pages
const areas = document.getElementById("areas");
areas.querySelector("[data-area=projects]").addEventListener("click", () => showProjects());
areas.querySelector("[data-area=vision]").addEventListener("click", () => showVision(view, setCrumbs));

async function start() {
  signin.hidden = true;
  view.hidden = false;
  areas.hidden = false;
  document.getElementById("signout").hidden = false;
  try { state.domains = await api.domains(); } catch (e) { state.domains = []; }
  await showProjects();
}

function domainType(id) { return (state.domains.find((d) => d.id === id) || {}).type || "Classification"; }
const modelOf = (iteration) => `customvision-${iteration.id}`; // the iteration's Loupe model (docs/customvision.md)
const isDetection = (project) => domainType(project.settings.domainId) === "ObjectDetection";

function setCrumbs(...parts) {
  crumbs.replaceChildren(...parts.flatMap((p, i) => (i ? [" / ", p] : [p])));
}

// --- projects
async function showProjects() {
  state.project = null;
  setCrumbs("Projects");
  const error = errorLine();
  const list = h("tbody");
  const name = h("input", { required: true, maxlength: "200" });
  const kind = h("select", {}, h("option", { value: "Multiclass" }, "Classification (one tag per image)"),
    h("option", { value: "Multilabel" }, "Classification (several tags per image)"),
    h("option", { value: "Detection" }, "Object detection"));
  const domain = h("select");
  const fillDomains = () => {
    const type = kind.value === "Detection" ? "ObjectDetection" : "Classification";
    domain.replaceChildren(...state.domains.filter((d) => d.type === type).map((d) => h("option", { value: d.id }, d.name)));
  };
  kind.addEventListener("change", fillDomains);
  fillDomains();
  const form = h("form", { class: "row", "aria-label": "Project creation" }, ...field("Name", name), ...field("Type", kind),
    ...field("Domain", domain), h("button", { type: "submit" }, "Create project"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    try {
      const project = await api.createProject(name.value.trim(), domain.value, kind.value === "Detection" ? undefined : kind.value);
      announce(`Project ${project.name} created`);
      await openProject(project);
    } catch (err) { error.textContent = `The project was not created: ${words(err)}`; }
  });
  view.replaceChildren(h("section", { class: "card" }, h("h2", {}, "New project"), form, error),
    h("section", { class: "card" }, h("h2", {}, "Projects"),
      h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Type"), h("th", {}, "Actions"))), list)));
  try {
    const projects = await api.projects();
    if (!projects.length) list.append(h("tr", {}, h("td", { colspan: "3" }, "No project yet.")));
    for (const p of projects) list.append(projectRow(p, error));
  } catch (err) { error.textContent = `The projects could not be listed: ${words(err)}`; }
}

function projectRow(p, error) {
  const type = isDetection(p) ? "Object detection" : `Classification (${p.settings.classificationType || "Multiclass"})`;
  const rename = async () => {
    const name = prompt(`New name for ${p.name}`, p.name);
    if (!name) return;
    try { await api.renameProject(p.id, name.trim()); await showProjects(); }
    catch (err) { error.textContent = `The project was not renamed: ${words(err)}`; }
  };
  const remove = async () => {
    if (!confirm(`Delete the project ${p.name} with its images and iterations?`)) return;
    try { await api.deleteProject(p.id); announce(`Project ${p.name} deleted`); await showProjects(); }
    catch (err) { error.textContent = `The project was not deleted: ${words(err)}`; }
  };
  return h("tr", {}, h("td", {}, h("a", { href: "#", onclick: (e) => { e.preventDefault(); openProject(p); } }, p.name)),
    h("td", {}, type),
    h("td", { class: "row" }, h("button", { type: "button", onclick: () => openProject(p) }, "Open"),
      h("button", { type: "button", class: "secondary", onclick: rename, "aria-label": `Rename ${p.name}` }, "Rename"),
      h("button", { type: "button", class: "danger", onclick: remove, "aria-label": `Delete ${p.name}` }, "Delete")));
}

// --- one project: tabs
async function openProject(project, tab = "images") {
  state.project = project;
  state.tab = tab;
  setCrumbs(h("a", { href: "#", onclick: (e) => { e.preventDefault(); showProjects(); } }, "Projects"), project.name);
  const tabs = ["images", "smart labeler", "train", "performance", "quick test", "predictions", "export"];
  const bar = h("div", { class: "tabs", role: "tablist" }, tabs.map((t) =>
    h("button", { type: "button", role: "tab", "aria-selected": String(t === tab), onclick: () => openProject(project, t) },
      t[0].toUpperCase() + t.slice(1))));
  const body = h("div", { id: "tab" });
  view.replaceChildren(h("h2", {}, project.name), bar, body);
  await refreshTags();
  const show = { images: imagesTab, train: trainTab, performance: performanceTab, "quick test": quickTestTab, export: exportTab,
    "smart labeler": smartLabelerTab, predictions: predictionsTab }[tab];
  await show(body);
}

async function refreshTags() {
  try { state.tags = await api.tags(state.project.id); } catch { state.tags = []; }
}

// --- images
async function imagesTab(body) {
  const project = state.project;
  const detection = isDetection(project);
  const error = errorLine();
  const notice = noticeLine();
  const page = { skip: 0, filter: "", selected: new Set(), images: [] };

  const tagName = h("input", { maxlength: "200" });
  const tagForm = h("form", { class: "row", "aria-label": "Tag creation" }, ...field("New tag", tagName), h("button", { type: "submit" }, "Add tag"));
  const tagList = h("p", { class: "tags-list" });
  const filter = h("select");
  // a multilabel image takes several tags at once: the selection gets every chosen tag
  const multilabel = project.settings.classificationType === "Multilabel" && !detection;
  const applyTag = h("select", { multiple: multilabel, size: multilabel ? String(Math.min(6, Math.max(2, state.tags.length))) : undefined });
  const drawTag = h("select");
  const fillTags = () => {
    tagList.textContent = state.tags.length
      ? state.tags.map((t, i) => `${i + 1}: ${t.name} (${t.imageCount})`).join("   ") : "No tag yet.";
    const opts = () => state.tags.map((t) => h("option", { value: t.id }, t.name));
    const keep = [filter.value, applyTag.value, drawTag.value];
    filter.replaceChildren(h("option", { value: "" }, "All images"), h("option", { value: "untagged" }, "Untagged"), ...opts());
    applyTag.replaceChildren(...opts());
    drawTag.replaceChildren(...opts());
    [filter.value, applyTag.value, drawTag.value] = keep;
    if (multilabel) applyTag.size = Math.min(6, Math.max(2, state.tags.length));
    else if (!applyTag.value && state.tags[0]) applyTag.value = state.tags[0].id;
    if (!drawTag.value && state.tags[0]) drawTag.value = state.tags[0].id;
  };
  tagForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    try { await api.createTag(project.id, tagName.value.trim()); tagName.value = ""; await refreshTags(); fillTags(); }
    catch (err) { error.textContent = `The tag was not created: ${words(err)}`; }
  });

  // upload
  const input = h("input", { type: "file", multiple: true, accept: "image/*" });
  const progress = h("progress", { max: "1", value: "0", hidden: true, "aria-label": "Upload progress" });
  const failures = h("ul", { class: "error", "aria-label": "Files that were not uploaded" });
  const drop = h("div", { class: "drop" }, h("p", {}, "Drop images here, or "), ...field("choose files", input), progress, failures);
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); upload([...e.dataTransfer.files]); });
  input.addEventListener("change", () => upload([...input.files]));

  async function upload(files) {
    files = files.filter((f) => f.type.startsWith("image/") || /\.(jpe?g|png|bmp|gif|webp)$/i.test(f.name));
    if (!files.length) return;
    failures.replaceChildren();
    progress.hidden = false;
    progress.max = files.length;
    progress.value = 0;
    let ok = 0;
    for (let i = 0; i < files.length; i += BATCH) {
      const batch = files.slice(i, i + BATCH);
      try {
        const summary = await api.upload(project.id, batch);
        summary.images.forEach((r, j) => {
          if (r.status === "OK" || r.status === "OKDuplicate") ok++;
          else failures.append(h("li", {}, `${batch[j]?.name || r.sourceUrl}: ${r.status}`));
        });
      } catch (err) {
        for (const f of batch) failures.append(h("li", {}, `${f.name}: ${words(err)}`));
      }
      progress.value = Math.min(files.length, i + BATCH);
    }
    notice.textContent = `${ok} of ${files.length} images uploaded.`;
    input.value = "";
    await refreshTags();
    fillTags();
    await loadPage();
  }

  // grid
  const grid = h("div", { class: "grid", "aria-label": "Images" });
  const pager = h("span");
  const prev = h("button", { type: "button", class: "secondary", onclick: () => { page.skip = Math.max(0, page.skip - PAGE); loadPage(); } }, "Previous page");
  const next = h("button", { type: "button", class: "secondary", onclick: () => { page.skip += PAGE; loadPage(); } }, "Next page");
  filter.addEventListener("change", () => { page.skip = 0; loadPage(); });

  const params = () => (page.filter = filter.value) === "untagged" ? { taggingStatus: "Untagged" }
    : page.filter ? { tagIds: page.filter } : {};
  async function loadPage() {
    error.textContent = "";
    try {
      const [images, count] = await Promise.all([api.images(project.id, { ...params(), take: PAGE, skip: page.skip }),
        api.imageCount(project.id, params())]);
      page.images = images;
      pager.textContent = count ? `${page.skip + 1}-${page.skip + images.length} of ${count}` : "No image.";
      prev.disabled = page.skip === 0;
      next.disabled = page.skip + images.length >= count;
      grid.replaceChildren(...images.map(card));
    } catch (err) { error.textContent = `The images could not be listed: ${words(err)}`; }
  }
  function card(image, index) {
    const names = [...new Set([...(image.tags || []).map((t) => t.tagName), ...(image.regions || []).map((r) => tagNameOf(r.tagId))])];
    const box = h("input", { type: "checkbox", checked: page.selected.has(image.id) });
    const el = h("div", { class: "thumb" + (page.selected.has(image.id) ? " selected" : ""), "data-image": image.id },
      h("img", { src: image.thumbnailUri, alt: `Image ${index + 1}`, loading: "lazy", onclick: () => (detection ? openEditor(index) : box.click()) }),
      h("div", { class: "row" }, ...field(`Select image ${index + 1}`, box)),
      h("div", { class: "tags" }, names.join(", ") || "untagged"));
    box.addEventListener("change", () => {
      box.checked ? page.selected.add(image.id) : page.selected.delete(image.id);
      el.classList.toggle("selected", box.checked);
    });
    if (detection) el.append(h("button", { type: "button", class: "secondary", onclick: () => openEditor(index) }, "Edit boxes"));
    return el;
  }
  const tagNameOf = (id) => (state.tags.find((t) => t.id === id) || {}).name || "?";

  const tagSelected = h("button", { type: "button" }, "Tag selected images");
  tagSelected.addEventListener("click", async () => {
    error.textContent = "";
    const chosen = [...applyTag.selectedOptions].map((o) => o.value);
    if (!page.selected.size || !chosen.length) { error.textContent = "Select images and a tag first."; return; }
    try {
      const pairs = [...page.selected].flatMap((imageId) => chosen.map((tagId) => ({ imageId, tagId })));
      for (let i = 0; i < pairs.length; i += BATCH) await api.tagImages(project.id, pairs.slice(i, i + BATCH));
      notice.textContent = `${page.selected.size} image${page.selected.size === 1 ? "" : "s"} tagged ${chosen.map(tagNameOf).join(", ")}.`;
      page.selected.clear();
      await refreshTags(); fillTags(); await loadPage();
    } catch (err) { error.textContent = `The images were not tagged: ${words(err)}`; }
  });

  // box editor (detection)
  const editorError = errorLine();
  const editorHost = h("section", { class: "card", hidden: true, "aria-label": "Box editor" });
  let editor = null, current = 0;
  function openEditor(index) {
    current = index;
    editor ||= new RegionEditor({ projectId: project.id, tags: state.tags, currentTag: () => drawTag.value,
      onError: (m) => (editorError.textContent = m), onChange: () => {} });
    editor.tags = state.tags;
    editor.show(page.images[index]);
    editorHost.hidden = false;
    editorHost.replaceChildren(h("h3", {}, `Image ${page.skip + index + 1}: draw boxes`),
      h("p", {}, "Drag on the image to draw a box; drag a box to move it, its corner to resize it. Keys: N / → next image, P / ← previous, 1-9 tag of the box, Delete removes the selected box, Esc closes."),
      h("div", { class: "row" }, ...field("Tag for new boxes", drawTag),
        h("button", { type: "button", class: "secondary", onclick: closeEditor }, "Close")),
      editorError, editor.root);
    editor.root.focus();
  }
  function closeEditor() { editorHost.hidden = true; loadPage(); }
  editorHost.addEventListener("keydown", async (e) => {
    if (!editor || e.target.tagName === "SELECT") return;
    if (e.key === "ArrowRight" || e.key === "n") { if (current + 1 < page.images.length) openEditor(current + 1); }
    else if (e.key === "ArrowLeft" || e.key === "p") { if (current > 0) openEditor(current - 1); }
    else if (e.key === "Delete" || e.key === "Backspace") await editor.removeSelected();
    else if (e.key === "Escape") closeEditor();
    else if (/^[1-9]$/.test(e.key) && state.tags[+e.key - 1]) {
      drawTag.value = state.tags[+e.key - 1].id;
      await editor.retagSelected(drawTag.value);
    } else return;
    e.preventDefault();
  });

  fillTags();
  body.replaceChildren(
    h("section", { class: "card" }, h("h3", {}, "Tags"), tagForm, tagList),
    h("section", { class: "card" }, h("h3", {}, "Upload"), drop, notice),
    editorHost,
    h("section", { class: "card" }, h("h3", {}, "Images"),
      h("div", { class: "row" }, ...field("Show", filter), prev, pager, next),
      h("div", { class: "row" }, ...field(multilabel ? "Tags" : "Tag", applyTag), tagSelected), error, grid));
  await loadPage();
}

// --- train and iterations
async function trainTab(body) {
  const project = state.project;
  const error = errorLine();
  const status = h("p", { role: "status", "aria-live": "polite", id: "train-status" });
  const budget = h("input", { type: "number", min: "1", max: "168", value: "1" });
  const rows = h("tbody");
  const train = async (params) => {
    error.textContent = "";
    try {
      const it = await api.train(project.id, { forceTrain: "true", ...params });
      await poll(it);
    } catch (err) { error.textContent = `Training did not start: ${words(err)}`; }
  };
  // the live progress (phase, percent, ETA) is the iteration's model's, under /computervision; a
  // training is cancelled there too (the Custom Vision API has no cancel): the iteration ends Failed
  const progress = h("div", { class: "train-progress", hidden: true });
  const bar = h("progress", { max: "100", value: "0", "aria-label": "Training progress" });
  const phase = h("span", { id: "train-phase" });
  const cancel = h("button", { type: "button", class: "danger" }, "Cancel training");
  progress.append(bar, h("div", { class: "row" }, phase, cancel));
  let cancelled = false, running = null;
  cancel.addEventListener("click", async () => {
    if (!running) return;
    error.textContent = "";
    cancel.disabled = true;
    try {
      const model = await vision.cancelModel(modelOf(running));
      cancelled = true;
      phase.textContent = `Cancelling (${model.status})`;
      announce(`Cancelling the training of ${running.name}`);
    } catch (err) {
      cancel.disabled = false;
      error.textContent = `The training was not cancelled: ${words(err)}`;
    }
  });
  async function poll(it) {
    const started = Date.now();
    running = it;
    cancelled = false;
    cancel.disabled = false;
    progress.hidden = false;
    while (it.status === "Training") {
      status.textContent = `${it.name}: Training (${Math.round((Date.now() - started) / 1000)} s)`;
      try {
        const model = await vision.model(modelOf(it));
        const p = model.progress || { phase: model.status, percent: 0 };
        bar.value = p.percent || 0;
        if (!cancelled) {
          phase.textContent = `${p.phase} ${Math.round(p.percent || 0)}%`
            + (p.etaSeconds !== undefined ? `, about ${Math.ceil(p.etaSeconds)} s left` : "") + (p.message ? ` (${p.message})` : "");
        }
      } catch (err) { if (err.status !== 404) phase.textContent = `The progress could not be read: ${words(err)}`; }
      await new Promise((r) => setTimeout(r, 1500));
      try { it = await api.iteration(project.id, it.id); }
      catch (err) { error.textContent = `The iteration could not be read: ${words(err)}`; progress.hidden = true; return; }
    }
    running = null;
    progress.hidden = true;
    status.textContent = cancelled && it.status === "Failed" ? `${it.name}: Cancelled (the iteration is kept as Failed)`
      : `${it.name}: ${it.status}` + (it.trainingErrorDetails ? ` (${it.trainingErrorDetails})` : "");
    announce(status.textContent);
    await list();
  }
  async function list() {
    try { state.iterations = await api.iterations(project.id); }
    catch (err) { error.textContent = `The iterations could not be listed: ${words(err)}`; return; }
    rows.replaceChildren(...state.iterations.map((it) => {
      const name = h("input", { value: it.publishName || `${project.name}-${it.name}`.replace(/[^A-Za-z0-9_-]/g, "-").slice(0, 80) });
      const publish = async () => {
        try { await api.publish(project.id, it.id, name.value.trim()); await list(); }
        catch (err) { error.textContent = `${it.name} was not published: ${words(err)}`; }
      };
      const unpublish = async () => {
        try { await api.unpublish(project.id, it.id); await list(); }
        catch (err) { error.textContent = `${it.name} was not unpublished: ${words(err)}`; }
      };
      return h("tr", { "data-iteration": it.id }, h("td", {}, it.name), h("td", { class: "it-status" }, it.status),
        h("td", {}, it.publishName ? `Published as ${it.publishName}` : "Not published"),
        h("td", { class: "row" }, it.status !== "Completed" ? "" : it.publishName
          ? h("button", { type: "button", class: "secondary", onclick: unpublish }, "Unpublish")
          : [...field("Publish name", name), h("button", { type: "button", onclick: publish }, "Publish")],
          it.status === "Completed" ? h("button", { type: "button", class: "secondary", onclick: () => openProject(project, "performance") }, "Performance") : ""));
    }));
    const running = state.iterations.find((it) => it.status === "Training");
    if (running && !status.textContent) await poll(running);
  }
  body.replaceChildren(h("section", { class: "card" }, h("h3", {}, "Train"),
    h("div", { class: "row" }, h("button", { type: "button", onclick: () => train({ trainingType: "Regular" }) }, "Quick training")),
    h("div", { class: "row" }, ...field("Budget in hours", budget),
      h("button", { type: "button", class: "secondary", onclick: () => train({ trainingType: "Advanced", reservedBudgetInHours: budget.value }) }, "Advanced training")),
    status, progress, error),
  h("section", { class: "card" }, h("h3", {}, "Iterations"), h("div", { class: "scroll" }, h("table", {}, h("thead", {}, h("tr", {},
    h("th", {}, "Iteration"), h("th", {}, "Status"), h("th", {}, "Publication"), h("th", {}, "Actions"))), rows))));
  await list();
}

// --- performance
async function performanceTab(body) {
  const project = state.project;
  const detection = isDetection(project);
  const multilabel = project.settings.classificationType === "Multilabel";
  const error = errorLine();
  const pick = h("select");
  const threshold = h("input", { type: "range", min: "0", max: "1", step: "0.01", value: "0.5" });
  const overlap = h("input", { type: "range", min: "0", max: "1", step: "0.01", value: "0.3" });
  const tv = h("output", {}, "50%"), ov = h("output", {}, "30%");
  const overall = h("div", { class: "metrics", id: "overall" });
  const rows = h("tbody");
  // the extras keep their room while they load: no layout jump under the figures
  const curve = h("div", { class: "reserve chart-slot", "aria-busy": "true" }, "Computing the precision-recall curve...");
  const curveError = errorLine();
  const matrix = h("div", { class: "reserve scroll" });
  const wrong = h("div", { class: "reserve" });
  const imagesError = errorLine();
  try { state.iterations = await api.iterations(project.id); }
  catch (err) { error.textContent = `The iterations could not be listed: ${words(err)}`; }
  const done = state.iterations.filter((it) => it.status === "Completed");
  pick.replaceChildren(...done.map((it) => h("option", { value: it.id }, it.name)));
  let timer = null, seq = 0, points = null, images = null, curveSeq = 0;
  async function load() {
    tv.textContent = pct(+threshold.value).replace(".0%", "%");
    ov.textContent = pct(+overlap.value).replace(".0%", "%");
    if (!pick.value) { error.textContent = "No trained iteration yet: train the project first."; return; }
    const mine = ++seq;
    try {
      const perf = await api.performance(project.id, pick.value, threshold.value, detection ? overlap.value : undefined);
      if (mine !== seq) return; // a newer slider position already asked
      error.textContent = "";
      overall.replaceChildren(h("div", {}, "Precision", h("b", { id: "precision" }, pct(perf.precision))),
        h("div", {}, "Recall", h("b", { id: "recall" }, pct(perf.recall))),
        h("div", {}, detection ? "mAP" : "AP", h("b", { id: "ap" }, pct(perf.averagePrecision))));
      rows.replaceChildren(...(perf.perTagPerformance || []).map((t) => h("tr", {}, h("td", {}, t.name),
        h("td", {}, pct(t.precision)), h("td", {}, pct(t.recall)), h("td", {}, pct(t.averagePrecision)))));
    } catch (err) { if (mine === seq) error.textContent = `The performance could not be read: ${words(err)}`; }
    drawExtras();
  }
  // the curve depends on the iteration (and the overlap for detection), not on the threshold
  async function loadCurve() {
    if (!pick.value) return;
    const mine = ++curveSeq;
    curve.setAttribute("aria-busy", "true");
    curveError.textContent = "";
    try {
      const found = await curvePoints(project.id, pick.value, detection ? overlap.value : undefined);
      if (mine !== curveSeq) return;
      points = found;
    } catch (err) { if (mine === curveSeq) curveError.textContent = `The precision-recall curve could not be computed: ${words(err)}`; }
    curve.removeAttribute("aria-busy");
    drawExtras();
  }
  async function loadImages() {
    if (!pick.value) return;
    imagesError.textContent = "";
    try { images = await imagePerformances(project.id, pick.value); }
    catch (err) { imagesError.textContent = `The held-out images could not be read: ${words(err)}`; images = null; }
    drawExtras();
  }
  function drawExtras() {
    if (points) curve.replaceChildren(prCurve(points, +threshold.value));
    if (!images) return;
    if (!detection) matrix.replaceChildren(confusionMatrix(images, state.tags, +threshold.value, multilabel));
    wrong.replaceChildren(wrongImages(images, +threshold.value, +overlap.value, detection, multilabel));
  }
  const soon = () => { clearTimeout(timer); timer = setTimeout(load, 120); };
  threshold.addEventListener("input", soon);
  overlap.addEventListener("input", soon);
  overlap.addEventListener("change", loadCurve);
  pick.addEventListener("change", () => { points = images = null; load(); loadCurve(); loadImages(); });
  body.replaceChildren(h("section", { class: "card" }, h("h3", {}, "Performance"),
    h("div", { class: "row" }, ...field("Iteration", pick)),
    h("div", { class: "row" }, ...field("Probability threshold", threshold), tv),
    detection ? h("div", { class: "row" }, ...field("Overlap threshold", overlap), ov) : "",
    error, overall,
    h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Tag"), h("th", {}, "Precision"), h("th", {}, "Recall"),
      h("th", {}, "AP"))), rows)),
  h("section", { class: "card" }, h("h3", {}, "Precision-recall curve"),
    h("p", {}, "The API's precision and recall at thresholds from 5% to 95%; the ringed point is the slider's threshold."), curveError, curve),
  detection ? "" : h("section", { class: "card" }, h("h3", {}, "Confusion matrix"), matrix),
  h("section", { class: "card" }, h("h3", {}, "Images the model got wrong"), imagesError, wrong));
  await Promise.all([load(), loadCurve(), loadImages()]);
}

// --- smart labeler (labeler.js)
async function smartLabelerTab(body) {
  try { state.iterations = await api.iterations(state.project.id); }
  catch (err) { body.replaceChildren(h("p", { class: "error", role: "alert" }, `The iterations could not be listed: ${words(err)}`)); return; }
  await labelerTab(body, state.project, state.iterations, isDetection(state.project));
}

// --- export
async function exportTab(body) {
  const project = state.project;
  const error = errorLine();
  const pick = h("select");
  const host = h("div");
  try { state.iterations = await api.iterations(project.id); }
  catch (err) { error.textContent = `The iterations could not be listed: ${words(err)}`; }
  pick.replaceChildren(...state.iterations.filter((it) => it.status === "Completed").map((it) => h("option", { value: it.id }, it.name)));
  const show = async () => {
    if (!pick.value) { error.textContent = "No trained iteration yet: train the project first."; return; }
    const panel = exportPanel(project.id, pick.value);
    host.replaceChildren(panel.root);
    await panel.ready;
  };
  pick.addEventListener("change", show);
  body.replaceChildren(h("section", { class: "card" }, h("h3", {}, "Export"),
    h("p", {}, "Each package is built by a job; when it is done, download the zip (its link expires)."),
    h("div", { class: "row" }, ...field("Iteration", pick)), error, host));
  await show();
}

// --- stored predictions: quick tests kept and Prediction API calls without /nostore
const PREDICTIONS_PAGE = 24;
async function predictionsTab(body) {
  const project = state.project;
  const detection = isDetection(project);
  const multilabel = project.settings.classificationType === "Multilabel" && !detection;
  const error = errorLine();
  const notice = noticeLine();
  const floor = h("input", { type: "range", min: "0", max: "1", step: "0.01", value: "0.5" });
  const fv = h("output", {}, "50%");
  const grid = h("div", { class: "grid wide-cells", id: "stored-predictions", "aria-label": "Stored predictions" });
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "More predictions");
  let continuation = null, count = 0;
  const names = () => Object.fromEntries((state.iterations || []).map((it) => [it.id, it.name]));
  const tagIdOf = (name) => (state.tags.find((t) => t.name === name) || {}).id;
  try { state.iterations = await api.iterations(project.id); } catch { state.iterations = []; }

  function card(stored) {
    const n = ++count;
    const preds = stored.predictions || [];
    const frame = h("div", { class: "result mini" }, h("img", { src: stored.originalImageUri, alt: `Prediction ${n}`, loading: "lazy" }));
    const tagPick = h("select", { multiple: multilabel, size: multilabel ? String(Math.min(6, Math.max(2, state.tags.length))) : undefined },
      state.tags.map((t) => h("option", { value: t.id }, t.name)));
    const summary = h("p", { class: "kept" });
    const el = h("figure", { class: "wrong prediction", "data-prediction": stored.id }, frame);
    // what becomes the training image's labels: the boxes (detection) or the tags at or above the floor
    const chosen = () => preds.filter((x) => x.probability >= +floor.value);
    function refresh() {
      frame.querySelectorAll(".box").forEach((b) => b.remove());
      if (detection) {
        const boxes = chosen().filter((x) => x.boundingBox);
        for (const x of boxes) {
          const b = x.boundingBox;
          const box = h("div", { class: "box predicted" }, h("span", {}, `${x.tagName} ${pct(x.probability)}`));
          Object.assign(box.style, { left: `${100 * b.left}%`, top: `${100 * b.top}%`, width: `${100 * b.width}%`, height: `${100 * b.height}%` });
          frame.append(box);
        }
        summary.textContent = `${boxes.length} box${boxes.length === 1 ? "" : "es"} at or above ${fv.textContent} will be its regions.`;
      } else {
        // multiclass: the top tag (one is always chosen); multilabel: every tag at or above the floor
        const ids = new Set((multilabel ? chosen() : preds.slice(0, 1)).map((x) => x.tagId || tagIdOf(x.tagName)));
        for (const o of tagPick.options) o.selected = ids.has(o.value);
      }
    }
    const add = async () => {
      error.textContent = "";
      const entry = { id: stored.id };
      if (detection) {
        entry.regions = chosen().filter((x) => x.boundingBox).map((x) => ({ tagId: x.tagId || tagIdOf(x.tagName), ...x.boundingBox }));
      } else {
        entry.tagIds = [...tagPick.selectedOptions].map((o) => o.value);
      }
      try {
        const result = await api.imagesFromPredictions(project.id, [entry]);
        const status = result.images && result.images[0] ? result.images[0].status : "?";
        if (status !== "OK" && status !== "OKDuplicate") { error.textContent = `Prediction ${n} was not added: ${status}`; return; }
        // moved, as in Custom Vision: the image is a training image now, the stored prediction goes
        await api.deletePredictions(project.id, [stored.id]);
        el.remove();
        emptied();
        const labels = detection ? `${entry.regions.length} region${entry.regions.length === 1 ? "" : "s"}`
          : entry.tagIds.map((id) => (state.tags.find((t) => t.id === id) || {}).name).join(", ") || "untagged";
        notice.textContent = `Prediction ${n} added as a training image (${labels}).`;
        await refreshTags();
      } catch (err) { error.textContent = `Prediction ${n} was not added: ${words(err)}`; }
    };
    const remove = async () => {
      error.textContent = "";
      try { await api.deletePredictions(project.id, [stored.id]); el.remove(); emptied(); notice.textContent = `Prediction ${n} deleted.`; }
      catch (err) { error.textContent = `Prediction ${n} was not deleted: ${words(err)}`; }
    };
    el.append(h("figcaption", {},
      h("p", {}, `${names()[stored.iteration] || "an iteration"}, ${new Date(stored.created).toLocaleString()}`),
      h("p", {}, preds.slice(0, 3).map((x) => `${x.tagName} ${pct(x.probability)}`).join(", ") || "nothing found"),
      detection ? summary : h("div", { class: "row" }, ...field(multilabel ? `Tags for prediction ${n}` : `Tag for prediction ${n}`, tagPick)),
      h("div", { class: "row" },
        h("button", { type: "button", onclick: add, "aria-label": `Add prediction ${n} to the training images` }, "Add to training images"),
        h("button", { type: "button", class: "danger", onclick: remove, "aria-label": `Delete prediction ${n}` }, "Delete"))));
    el.refresh = refresh;
    refresh();
    return el;
  }

  function emptied() {
    if (!grid.querySelector("figure.prediction") && !continuation && !grid.querySelector(".empty")) {
      grid.append(h("p", { class: "empty" }, "No stored prediction: keep a quick test, or call the Prediction API without /nostore."));
    }
  }
  async function load(first) {
    error.textContent = "";
    try {
      const page = await api.predictions(project.id, { maxCount: PREDICTIONS_PAGE, orderBy: "Newest", continuation: first ? undefined : continuation });
      if (first) { grid.replaceChildren(); count = 0; }
      grid.append(...page.results.map(card));
      continuation = page.token && page.token.continuation;
      more.hidden = !continuation;
      emptied();
    } catch (err) { error.textContent = `The stored predictions could not be listed: ${words(err)}`; }
  }
  floor.addEventListener("input", () => {
    fv.textContent = pct(+floor.value).replace(".0%", "%");
    for (const el of grid.querySelectorAll("figure.prediction")) el.refresh();
  });
  more.addEventListener("click", () => load(false));
  body.replaceChildren(h("section", { class: "card" }, h("h3", {}, "Stored predictions"),
    h("p", {}, "Images sent to the Prediction API (without /nostore) or kept from a quick test, newest first. Add one to the training images with its "
      + (detection ? "boxes" : "tags") + ", or delete it."),
    detection || multilabel ? h("div", { class: "row" }, ...field(detection ? "Keep boxes from probability" : "Preselect tags from probability", floor), fv) : "",
    error, notice, grid, more));
  await load(true);
}

// --- quick test
async function quickTestTab(body) {
  const project = state.project;
  const detection = isDetection(project);
  const error = errorLine();
  const pick = h("select");
  const input = h("input", { type: "file", accept: "image/*" });
  const keep = h("input", { type: "checkbox" });
  // client side and instant: the answer is kept, the slider only hides what is below it
  const threshold = h("input", { type: "range", min: "0", max: "1", step: "0.01", value: detection ? "0.3" : "0" });
  const tv = h("output", { id: "quick-threshold" });
  const out = h("div");
  try { state.iterations = await api.iterations(project.id); }
  catch (err) { error.textContent = `The iterations could not be listed: ${words(err)}`; }
  pick.replaceChildren(...state.iterations.filter((it) => it.status === "Completed").map((it) => h("option", { value: it.id }, it.name)));
  let last = null;
  function draw() {
    tv.textContent = pct(+threshold.value).replace(".0%", "%");
    if (!last) return;
    const { result, img } = last;
    const preds = result.predictions || [];
    const shown = preds.filter((p) => p.probability >= +threshold.value);
    const frame = h("div", { class: "result" }, img);
    for (const p of shown.filter((x) => x.boundingBox)) {
      const b = p.boundingBox;
      const box = h("div", { class: "box" }, h("span", {}, `${p.tagName} ${pct(p.probability)}`));
      Object.assign(box.style, { left: `${100 * b.left}%`, top: `${100 * b.top}%`, width: `${100 * b.width}%`, height: `${100 * b.height}%` });
      frame.append(box);
    }
    out.replaceChildren(frame, h("table", { id: "predictions" },
      h("caption", {}, `${shown.length} of ${preds.length} ${detection ? "boxes" : "tags"} at or above ${tv.textContent}`
        + (result.id && keep.checked ? "; stored as a prediction" : "")),
      h("thead", {}, h("tr", {}, h("th", {}, "Tag"), h("th", {}, "Probability"))),
      h("tbody", {}, shown.slice(0, 50).map((p) => h("tr", {}, h("td", {}, p.tagName), h("td", {}, pct(p.probability)))))));
  }
  input.addEventListener("change", async () => {
    const file = input.files[0];
    if (!file) return;
    error.textContent = "";
    last = null;
    out.replaceChildren(h("p", {}, "Testing..."));
    try {
      const result = await api.quickTest(project.id, pick.value || undefined, file, keep.checked);
      const img = h("img", { src: URL.createObjectURL(file), alt: "The tested image" });
      await img.decode().catch(() => {}); // shown with its size known: no layout jump
      last = { result, img };
      draw();
      const preds = result.predictions || [];
      announce(preds.length ? `Best: ${preds[0].tagName} ${pct(preds[0].probability)}` : "Nothing found");
    } catch (err) {
      out.replaceChildren();
      error.textContent = `The quick test failed: ${words(err)}`;
    }
  });
  threshold.addEventListener("input", draw);
  draw();
  body.replaceChildren(h("section", { class: "card" }, h("h3", {}, "Quick test"),
    h("div", { class: "row" }, ...field("Iteration", pick), ...field("Image to test", input)),
    h("div", { class: "row" }, ...field("Keep it among the stored predictions", keep)),
    h("div", { class: "row" }, ...field("Show from probability", threshold), tv), error, out));
}

if (session.key) start().catch((e) => { document.getElementById("signin-error").textContent = words(e); signin.hidden = false; });
