// The only place that talks to Loupe: its public Custom Vision and Image Analysis 4.0 routes,
// the key in a header.
const TRAINING = "/customvision/v3.4-preview/training";
const PREDICTION = "/customvision/v3.1/prediction";
const VISION = "/computervision";
// every /computervision call needs one of the api-versions the middleware knows; model
// customization answers the same on all of them
const API_VERSION = "2023-04-01-preview";
const LIST_TOP = 30; // the /computervision lists' largest page (docs/wire-contract.md#paging)
const KEY_ITEM = "loupe.studio.key";

export class ApiError extends Error {
  constructor(status, code, message, details = [], target = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details; // /computervision's error.details: one {code, target, message} per problem
    this.target = target;
  }
  // the error in words, as shown where it happened
  get words() {
    if (this.status === 401) return "The API key was refused (401). Sign in again with a key from LOUPE_API_KEYS.";
    if (this.status === 0) return `The server could not be reached: ${this.message}`;
    return `${this.message} (${this.code || "error"}, HTTP ${this.status})`;
  }
}

// sessionStorage: the key lives as long as the tab, never in a URL or in localStorage
export const session = {
  get key() { return sessionStorage.getItem(KEY_ITEM) || ""; },
  set key(value) { if (value) sessionStorage.setItem(KEY_ITEM, value); else sessionStorage.removeItem(KEY_ITEM); },
};

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

async function call(method, url, { params, json, body, header = "Training-Key", key } = {}) {
  const headers = { [header]: key ?? session.key };
  let payload = body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(url + query(params), { method, headers, body: payload, credentials: "omit" });
  } catch (e) {
    throw new ApiError(0, "NetworkError", e.message);
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!response.ok && response.status !== 207) {
    const err = (data && data.error) || data || {};
    throw new ApiError(response.status, err.code, err.message || response.statusText || "Request failed",
      Array.isArray(err.details) ? err.details : [], err.target || null);
  }
  return data;
}

const t = (path) => TRAINING + path;
const p = (id) => t(`/projects/${encodeURIComponent(id)}`);

export const api = {
  checkKey: (key) => call("GET", t("/projects"), { key }),
  domains: () => call("GET", t("/domains")),
  projects: () => call("GET", t("/projects")),
  createProject: (name, domainId, classificationType) =>
    call("POST", t("/projects"), { params: { name, domainId, classificationType } }),
  renameProject: (id, name) => call("PATCH", p(id), { json: { name } }),
  deleteProject: (id) => call("DELETE", p(id)),
  tags: (id) => call("GET", p(id) + "/tags"),
  createTag: (id, name) => call("POST", p(id) + "/tags", { params: { name } }),
  images: (id, params) => call("GET", p(id) + "/images", { params }),
  imageCount: (id, params) => call("GET", p(id) + "/images/count", { params }),
  imagesByIds: (id, ids) => call("GET", p(id) + "/images/id", { params: { imageIds: ids.join(",") } }),
  upload: (id, files) => {
    const form = new FormData();
    for (const f of files) form.append("imageData", f, f.name);
    return call("POST", p(id) + "/images", { body: form });
  },
  tagImages: (id, pairs) => call("POST", p(id) + "/images/tags", { json: { tags: pairs } }),
  addRegions: (id, regions) => call("POST", p(id) + "/images/regions", { json: { regions } }),
  deleteRegions: (id, regionIds) => call("DELETE", p(id) + "/images/regions", { params: { regionIds: regionIds.join(",") } }),
  train: (id, params) => call("POST", p(id) + "/train", { params }),
  iterations: (id) => call("GET", p(id) + "/iterations"),
  iteration: (id, it) => call("GET", p(id) + `/iterations/${encodeURIComponent(it)}`),
  performance: (id, it, threshold, overlapThreshold) =>
    call("GET", p(id) + `/iterations/${encodeURIComponent(it)}/performance`, { params: { threshold, overlapThreshold } }),
  publish: (id, it, publishName) =>
    call("POST", p(id) + `/iterations/${encodeURIComponent(it)}/publish`, { params: { publishName, predictionId: "loupe-studio" } }),
  unpublish: (id, it) => call("DELETE", p(id) + `/iterations/${encodeURIComponent(it)}/publish`),
  quickTest: (id, iterationId, file, store = false) => {
    const form = new FormData();
    form.append("imageData", file, file.name);
    return call("POST", p(id) + "/quicktest/image", { params: { iterationId, store: String(store) }, body: form });
  },
  // stored predictions (quick tests kept, Prediction API calls without /nostore)
  predictions: (id, token) => call("POST", p(id) + "/predictions/query", { json: token }),
  deletePredictions: (id, ids) => call("DELETE", p(id) + "/predictions", { params: { ids: ids.join(",") } }),
  imagesFromPredictions: (id, images) => call("POST", p(id) + "/images/predictions", { json: { images } }),
  imagePerformances: (id, it, params) =>
    call("GET", p(id) + `/iterations/${encodeURIComponent(it)}/performance/images`, { params }),
  exports: (id, it) => call("GET", p(id) + `/iterations/${encodeURIComponent(it)}/export`),
  exportIteration: (id, it, platform, flavor) =>
    call("POST", p(id) + `/iterations/${encodeURIComponent(it)}/export`, { params: { platform, flavor } }),
  suggested: (id, iterationId, token) => call("POST", p(id) + "/images/suggested", { params: { iterationId }, json: token }),
  // the Prediction API with its own header, as an application would call it
  predict: (id, publishName, kind, file) => {
    const form = new FormData();
    form.append("imageData", file, file.name);
    return call("POST", `${PREDICTION}/${encodeURIComponent(id)}/${kind}/iterations/${encodeURIComponent(publishName)}/image/nostore`,
      { body: form, header: "Prediction-Key" });
  },
};

// --- Image Analysis 4.0 (/computervision): Ocp-Apim-Subscription-Key and api-version on every call
const v = (method, path, opts = {}) => call(method, VISION + path,
  { ...opts, header: "Ocp-Apim-Subscription-Key", params: { ...opts.params, "api-version": API_VERSION } });
const seg = encodeURIComponent;

// every page of a skip/top list (nextLink says more exist; its host is the server's view, so it is not followed)
async function all(path, params) {
  const out = [];
  for (let skip = 0; skip < 100 * LIST_TOP; skip += LIST_TOP) {
    const page = await v("GET", path, { params: { ...params, skip, top: LIST_TOP } });
    out.push(...page.value);
    if (!page.nextLink) break;
  }
  return out;
}

export const vision = {
  datasets: () => all("/datasets"),
  dataset: (name) => v("GET", `/datasets/${seg(name)}`),
  registerDataset: (name, body) => v("PUT", `/datasets/${seg(name)}`, { json: body }),
  deleteDataset: (name) => v("DELETE", `/datasets/${seg(name)}`),
  models: () => all("/models"),
  model: (name) => v("GET", `/models/${seg(name)}`),
  createModel: (name, body) => v("PUT", `/models/${seg(name)}`, { json: body }),
  cancelModel: (name) => v("POST", `/models/${seg(name)}:cancel`),
  deleteModel: (name) => v("DELETE", `/models/${seg(name)}`),
  evaluations: (model) => all(`/models/${seg(model)}/evaluations`),
  createEvaluation: (model, name, testDatasetName) =>
    v("PUT", `/models/${seg(model)}/evaluations/${seg(name)}`, { json: { evaluationParameters: { testDatasetName } } }),
  deleteEvaluation: (model, name) => v("DELETE", `/models/${seg(model)}/evaluations/${seg(name)}`),
  // a failed export's reason: Custom Vision's Export shape has no field for it, the model's export has
  modelExport: (model, platform, flavor) => v("GET", `/models/${seg(model)}/exports/${seg(platform)}`, { params: { flavor } }),
  analyze: (model, file) => {
    const form = new FormData(); // multipart: the file's own type travels with it, whatever it is
    form.append("file", file, file.name);
    return v("POST", "/imageanalysis:analyze", { params: { "model-name": model }, body: form });
  },
};
