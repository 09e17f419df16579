// Tiny DOM helpers: elements are built with textContent, never innerHTML, so names stay text.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k in el && k !== "list" && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

let ids = 0;
export const uid = (prefix) => `${prefix}-${++ids}`;

// a labelled control: <label for> + the control
export function field(text, control) {
  control.id ||= uid("f");
  return [h("label", { for: control.id }, text), control];
}

export const errorLine = () => h("p", { class: "error", role: "alert" });
export const noticeLine = () => h("p", { class: "notice", role: "status" });
export const pct = (x) => (x === undefined || x === null ? "-" : `${(100 * x).toFixed(1)}%`);

export function announce(text) {
  document.getElementById("status").textContent = text;
}
