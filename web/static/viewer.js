// The image viewer: one picture of the open conversation at full size in a modal dialog. Keyboard:
// Escape closes, ← and → move between the conversation's pictures, Tab stays inside the dialog; on
// closing, focus goes back to what opened it. The thumbnail (already fetched) stands in while the
// full picture comes, in the same box (the image's own width and height), so nothing jumps.

import { sizeWords } from "./attachmodel.js";
import { blobUrl, save } from "./media.js";

const state = { items: [], index: 0, conv: "", opener: null, dialog: null };

function build() {
  const dialog = document.createElement("dialog");
  dialog.id = "viewer";
  dialog.className = "viewer";
  dialog.setAttribute("aria-labelledby", "viewer-title");
  const button = (cls, text, label, onclick) => {
    const b = document.createElement("button");
    Object.assign(b, { type: "button", className: cls, textContent: text });
    if (label) b.setAttribute("aria-label", label);
    b.addEventListener("click", onclick);
    return b;
  };
  const bar = document.createElement("div");
  bar.className = "viewer-bar";
  const title = document.createElement("h2");
  title.id = "viewer-title";
  const count = document.createElement("span");
  count.id = "viewer-count";
  count.className = "viewer-count";
  bar.append(title, count,
    button("viewer-prev secondary", "‹", "Previous photo", () => move(-1)),
    button("viewer-next secondary", "›", "Next photo", () => move(1)),
    button("viewer-save secondary", "Download", null, () => save(state.conv, state.items[state.index].att)),
    button("viewer-close", "Close", "Close the photo", () => dialog.close()));
  const img = document.createElement("img");
  img.id = "viewer-image";
  const stage = document.createElement("div");
  stage.className = "viewer-stage";
  stage.append(img);
  dialog.append(bar, stage);
  dialog.addEventListener("keydown", onKey);
  dialog.addEventListener("close", onClose);
  dialog.addEventListener("click", (event) => { if (event.target === stage) dialog.close(); });
  document.body.append(dialog);
  return dialog;
}

/** Opens the viewer on `attId` among `items` ([{msg, att}] in the conversation's order). */
export function showImage(items, attId, conv, opener) {
  const index = items.findIndex((it) => it.att.id === attId);
  if (index < 0) return;
  state.dialog ??= build();
  Object.assign(state, { items, index, conv, opener: opener || document.activeElement });
  draw();
  if (!state.dialog.open) state.dialog.showModal();
  state.dialog.querySelector(".viewer-close").focus();
}

export function closeViewer() {
  if (state.dialog?.open) state.dialog.close();
}

function move(step) {
  const next = state.index + step;
  if (next < 0 || next >= state.items.length) return;
  state.index = next;
  draw();
}

function draw() {
  const { att } = state.items[state.index];
  const dialog = state.dialog;
  const img = dialog.querySelector("#viewer-image");
  dialog.querySelector("#viewer-title").textContent = att.name;
  dialog.querySelector("#viewer-count").textContent =
    `${state.index + 1} of ${state.items.length} · ${att.width}×${att.height} · ${sizeWords(att.size)}`;
  dialog.querySelector(".viewer-prev").disabled = state.index === 0;
  dialog.querySelector(".viewer-next").disabled = state.index === state.items.length - 1;
  img.alt = att.name;
  img.width = att.width; // the box of the full picture, kept by the stand-in too
  img.height = att.height;
  img.dataset.att = att.id;
  img.dataset.full = "";
  const shown = att.id;
  const thumb = att.localUrl ? Promise.resolve(att.localUrl) : blobUrl(state.conv, att.id, true);
  thumb.then((url) => { if (img.dataset.att === shown && !img.dataset.full) img.src = url; }, () => {});
  blobUrl(state.conv, att.id).then((url) => {
    if (img.dataset.att !== shown) return;
    img.src = url;
    img.dataset.full = "1";
  }, () => { if (img.dataset.att === shown) img.dataset.full = "failed"; });
}

function onKey(event) {
  if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
    event.preventDefault();
    move(event.key === "ArrowLeft" ? -1 : 1);
  } else if (event.key === "Tab") {
    trapTab(event);
  }
  // Escape: the dialog's own cancel closes it (then onClose)
}

/** Tab and Shift+Tab go round the dialog's enabled buttons, never out of it. */
function trapTab(event) {
  const buttons = [...state.dialog.querySelectorAll("button")].filter((b) => !b.disabled);
  if (buttons.length === 0) return;
  const at = buttons.indexOf(document.activeElement);
  const next = event.shiftKey ? (at <= 0 ? buttons.length - 1 : at - 1) : (at + 1) % buttons.length;
  event.preventDefault();
  buttons[next].focus();
}

function onClose() {
  const opener = state.opener;
  state.opener = null;
  const img = state.dialog.querySelector("#viewer-image");
  img.removeAttribute("src");
  img.dataset.att = "";
  // the thumbnail that opened it may have been redrawn meanwhile: find it again by its attachment
  const again = opener && !opener.isConnected && opener.dataset?.att
    ? document.querySelector(`.thumb[data-att="${CSS.escape(opener.dataset.att)}"]`) : opener;
  if (again && again.isConnected) again.focus();
}
