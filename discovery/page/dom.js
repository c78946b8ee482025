// Small DOM and formatting helpers shared by the cluster page's modules. Every text goes in with
// textContent; elements are built with DOM APIs (the CSP forbids inline code and style attributes).

export const $ = (id) => document.getElementById(id);

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value == null) continue;
    if (key === "text") node.textContent = value;
    else if (key === "data") Object.assign(node.dataset, value);
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  node.append(...children.filter((c) => c != null));
  return node;
}

// A table inside a horizontal scroll box: on a phone the table scrolls, the page does not.
export function scrollTable(caption, headers, rows) {
  const head = el("tr", {}, ...headers.map(([text, title, num]) =>
    el("th", { scope: "col", text, title, className: num ? "num" : "" })));
  return el("div", { className: "table-scroll", tabIndex: 0, "aria-label": caption },
    el("table", {}, el("caption", { className: "visually-hidden", text: caption }),
       el("thead", {}, head), el("tbody", {}, ...rows)));
}

export function numberCell(field, value, text, title) {
  return el("td", { className: "num", text, title, data: { field, value: value == null ? "" : String(value) } });
}

export function badge(state, text, title) {
  return el("span", { className: "badge", text, title, data: { state } });
}

export const fmt = {
  rate: (v) => (v == null ? "–" : v >= 100 ? v.toFixed(0) : v.toFixed(1)),
  ms: (v) => (v == null ? "–" : v >= 100 ? v.toFixed(0) : v.toFixed(1)),
  int: (v) => (v == null ? "–" : Math.round(v).toLocaleString("en")),
  pct: (v) => `${(v * 100).toFixed(v < 0.1 ? 2 : 1)}%`,
  clock: (t) => new Date(t * 1000).toLocaleTimeString("en-GB"),
  bytes(n) {
    if (n == null) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
  },
  age(s) {
    if (s < 90) return `${Math.round(s)} s`;
    if (s < 5400) return `${Math.round(s / 60)} min`;
    return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  },
};
