// A message's attachments on the page (docs/protocol.md §20): images as thumbnails whose box is
// drawn at its final size before the picture comes (the list never jumps), other files as a chip
// with name, size and a download button. The bytes need the token (Authorization header, never a
// URL), so they come by fetch and are shown through blob: URLs, one per file and kind, kept for the
// session (`forget` drops them at logout).

import { badgeOf, isImage, sizeWords, thumbSize } from "./attachmodel.js";
import { el as make } from "./view.js";

const urls = new Map(); // "<id>" or "<id>/thumb" → Promise of a blob: URL
const hooks = { token: () => null, open: () => {} };

/** `token`: () => the session's token; `open(convId, attId, button)`: show an image in the viewer. */
export function setupMedia(options) {
  Object.assign(hooks, options);
}

export function fileUrl(conv, id, thumb = false) {
  return `/v1/conversations/${encodeURIComponent(conv)}/attachments/${encodeURIComponent(id)}${thumb ? "/thumb" : ""}`;
}

/** The blob: URL of an attachment's bytes (or its thumbnail), fetched once. */
export function blobUrl(conv, id, thumb = false) {
  const key = thumb ? `${id}/thumb` : id;
  if (!urls.has(key)) {
    const got = fetchBlob(fileUrl(conv, id, thumb));
    urls.set(key, got);
    got.catch(() => urls.delete(key)); // a later look tries again
  }
  return urls.get(key);
}

async function fetchBlob(url) {
  const token = hooks.token();
  const response = await fetch(url, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return URL.createObjectURL(await response.blob());
}

export function forget() {
  for (const got of urls.values()) got.then((url) => URL.revokeObjectURL(url), () => {});
  urls.clear();
}

/** Draws `msg`'s attachments under its body (none once deleted); rebuilt only when they change. */
export function fillFiles(li, msg, conv) {
  let box = li.querySelector(".files");
  if (!box) {
    box = make("div", { class: "files" });
    li.querySelector(".body").after(box);
  }
  const list = msg.deleted ? [] : msg.attachments || [];
  li.classList.toggle("has-files", list.length > 0);
  const key = list.map((a) => a.id).join(",");
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  box.replaceChildren(...list.map((att) => (isImage(att) ? thumbItem(att, conv) : chipItem(att, conv))));
}

function thumbItem(att, conv) {
  const size = thumbSize(att.width, att.height);
  const img = make("img", { alt: att.name, width: size.width, height: size.height, decoding: "async" });
  const button = make("button", {
    type: "button", class: "thumb", "data-att": att.id,
    "aria-label": `Open photo ${att.name} (${att.width}×${att.height}, ${sizeWords(att.size)})`,
    onclick: (event) => hooks.open(conv.id, att.id, event.currentTarget),
  }, img);
  const shown = att.localUrl ? Promise.resolve(att.localUrl) : blobUrl(conv.id, att.id, true);
  shown.then((url) => { img.src = url; }, () => { button.classList.add("failed"); });
  return button;
}

function chipItem(att, conv) {
  const download = make("button", {
    type: "button", class: "file-download secondary", "aria-label": `Download ${att.name} (${sizeWords(att.size)})`,
    text: "Download", onclick: () => save(conv.id, att),
  });
  return make("div", { class: "file-chip", "data-att": att.id },
    make("span", { class: "file-icon", "aria-hidden": "true", text: badgeOf(att.name) }),
    make("span", { class: "file-text" },
      make("span", { class: "file-name", text: att.name || "file" }),
      make("span", { class: "file-size", text: sizeWords(att.size) })),
    download);
}

/** Saves an attachment as a download under its name (the bytes through a blob: URL). */
export async function save(conv, att) {
  try {
    const url = await blobUrl(conv, att.id);
    const a = make("a", { href: url, download: att.name || "file", hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
  } catch (err) {
    hooks.failed?.(err, att);
  }
}
