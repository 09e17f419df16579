// Export buttons of a Custom Vision iteration: POST .../export?platform=&flavor=, then the
// iteration's exports polled until Done (a download link to downloadUri) or Failed (its reason).
import { api, vision } from "./api.js";
import { announce, h } from "./dom.js";

// One line per package the API builds (docs/customvision.md#exports): adding a platform is one line,
// e.g. { platform: "TensorFlow", flavor: "TensorFlowLite", label: "TensorFlow Lite" }.
export const PLATFORMS = [
  { platform: "ONNX", label: "ONNX" },
  { platform: "ONNX", flavor: "ONNXFloat16", label: "ONNX (float16)" },
  { platform: "OpenVino", label: "OpenVINO" },
  { platform: "TensorFlow", flavor: "TensorFlowLite", label: "TensorFlow Lite" },
  { platform: "TensorFlow", flavor: "TensorFlowLiteFloat16", label: "TensorFlow Lite (float16)" },
  { platform: "TensorFlow", label: "TensorFlow SavedModel" },
  { platform: "CoreML", label: "CoreML" },
  { platform: "DockerFile", flavor: "Linux", label: "Docker app (Linux)" },
  { platform: "DockerFile", flavor: "ARM", label: "Docker app (ARM)" },
];

const POLL_MS = 1500;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const words = (e) => e.words || e.message;
const same = (x, p) => x.platform.toLowerCase() === p.platform.toLowerCase() && (x.flavor || null) === (p.flavor || null);
const slug = (p) => `${p.platform}${p.flavor ? "-" + p.flavor : ""}`.toLowerCase();

export function exportPanel(projectId, iterationId) {
  const rows = PLATFORMS.map((p) => {
    const status = h("span", { class: "export-status", role: "status" }, "Not exported");
    const link = h("span");
    const error = h("p", { class: "error", role: "alert" });
    const button = h("button", { type: "button", "aria-label": `Export ${p.label}` }, `Export ${p.label}`);
    const row = { p, status, link, error, button,
      el: h("li", { class: "export", "data-export": slug(p) }, h("div", { class: "row" }, button, status, link), error) };
    button.addEventListener("click", () => start(row));
    return row;
  });
  const root = h("ul", { class: "exports", "aria-label": "Export packages" }, rows.map((r) => r.el));

  async function show(row, found) {
    row.status.textContent = found ? found.status : "Not exported";
    row.button.disabled = !!found && found.status === "Exporting";
    row.link.replaceChildren();
    row.error.textContent = "";
    if (found && found.status === "Done" && found.downloadUri) {
      // a signed link to the blob store that expires; the zip's name says what it is
      row.link.replaceChildren(h("a", { href: found.downloadUri, download: `${slug(row.p)}.zip`, rel: "noopener" }, `Download ${row.p.label} (zip)`));
    } else if (found && found.status === "Failed") {
      row.error.textContent = `The ${row.p.label} export failed: ${await reason(row.p)}`;
    }
  }

  // Custom Vision's Export carries no reason; the same export under /computervision has its error
  async function reason(p) {
    try {
      const e = await vision.modelExport(`customvision-${iterationId}`, p.platform, p.flavor);
      return e.error ? `${e.error.message} (${e.error.code})` : "no reason was recorded";
    } catch (err) { return `its reason could not be read: ${words(err)}`; }
  }

  async function refresh() {
    const all = await api.exports(projectId, iterationId);
    for (const row of rows) {
      const found = all.find((x) => same(x, row.p));
      await show(row, found);
      if (found && found.status === "Exporting") follow(row, found); // started earlier: keep watching it
    }
  }

  async function follow(row, found) {
    while (found && found.status === "Exporting" && root.isConnected) {
      await sleep(POLL_MS);
      found = (await api.exports(projectId, iterationId)).find((x) => same(x, row.p));
    }
    await show(row, found);
    if (found) announce(`${row.p.label} export: ${found.status}`);
  }

  async function start(row) {
    row.error.textContent = "";
    row.button.disabled = true;
    row.status.textContent = "Exporting";
    try {
      await follow(row, await api.exportIteration(projectId, iterationId, row.p.platform, row.p.flavor));
    } catch (err) {
      row.button.disabled = false;
      row.status.textContent = "Not exported";
      row.error.textContent = `The ${row.p.label} export did not start: ${words(err)}`;
    }
  }

  const ready = refresh().catch((err) => { rows[0].error.textContent = `The exports could not be listed: ${words(err)}`; });
  return { root, ready };
}
