// Attaching files in the composer (docs/protocol.md §20, ADR 0032): a file is picked (the button),
// dropped on the conversation or pasted (an image from the clipboard), and goes up at once with
// XMLHttpRequest, whose upload progress drives a bar; it can be cancelled or removed until the message
// is sent. The tray above the text box previews each file (the picture for images, name and size).
// A refusal is said in words next to the composer (attachmodel.refusalWords) and the file is dropped.
// Sending takes the uploaded ids; main.js puts them in the send frame (`attachments`).

import { badgeOf, MAX_FILES, refusalWords, SEND_CODES, sizeWords } from "./attachmodel.js";
import { forget, setupMedia } from "./media.js";
import { closeViewer } from "./viewer.js";

const $ = (id) => document.getElementById(id);
let seq = 0;

export class Attacher {
  /** `token`: () => the session's token; `conv`: () => the open conversation's id (or null). */
  constructor({ token, conv, open }) {
    this.token = token;
    this.conv = conv;
    this.items = []; // {key, file, name, size, conv, state: uploading|ready, progress, xhr, meta, localUrl}
    this.known = new Map(); // attachment id → meta of our uploads (a pending send redrawn after a reconnect)
    setupMedia({ token, open, failed: () => this.say(refusalWords({ code: "network" }, "")) });
  }

  wire() {
    $("attach-button").addEventListener("click", () => $("attach-input").click());
    $("attach-input").addEventListener("change", (event) => {
      this.add([...event.target.files]);
      event.target.value = ""; // the same file can be picked again
    });
    $("composer-body").addEventListener("paste", (event) => {
      const files = [...(event.clipboardData?.files || [])];
      if (files.length === 0) return; // text: the text box takes it
      event.preventDefault();
      this.add(files);
    });
    const zone = $("conversation");
    const carries = (event) => [...(event.dataTransfer?.types || [])].includes("Files") && !$("composer").hidden;
    zone.addEventListener("dragover", (event) => {
      if (!carries(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
      zone.classList.add("dropping");
    });
    zone.addEventListener("dragleave", (event) => {
      if (!zone.contains(event.relatedTarget)) zone.classList.remove("dropping");
    });
    zone.addEventListener("drop", (event) => {
      zone.classList.remove("dropping");
      if (!carries(event)) return;
      event.preventDefault();
      this.add([...event.dataTransfer.files]);
    });
  }

  /** Starts uploading `files` into the open conversation. */
  add(files) {
    const conv = this.conv();
    if (!conv || files.length === 0) return;
    this.say("");
    const room = MAX_FILES - this.items.length;
    if (files.length > room) this.say(refusalWords({ code: "too_many_files" }));
    for (const file of files.slice(0, Math.max(0, room))) this.upload(file, conv);
    this.render();
  }

  upload(file, conv) {
    const item = { key: `f${++seq}`, file, name: file.name || "pasted file", size: file.size, conv,
                   state: "uploading", progress: 0, xhr: new XMLHttpRequest(), meta: null,
                   localUrl: file.type.startsWith("image/") ? URL.createObjectURL(file) : null };
    this.items.push(item);
    const xhr = item.xhr;
    xhr.open("POST", `/v1/conversations/${encodeURIComponent(conv)}/attachments?name=${encodeURIComponent(item.name)}`);
    const token = this.token();
    if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) this.progress(item, event.loaded / event.total);
    });
    xhr.addEventListener("load", () => this.answered(item));
    xhr.addEventListener("error", () => this.failed(item, { code: "network" }));
    xhr.send(file);
  }

  progress(item, fraction) {
    item.progress = fraction;
    const bar = $("attach-tray").querySelector(`[data-key="${item.key}"] progress`);
    if (bar) bar.value = fraction;
  }

  answered(item) {
    let body = {};
    try { body = JSON.parse(item.xhr.responseText || "{}"); } catch (err) { body = {}; }
    if (item.xhr.status !== 201 || !body.attachment) {
      this.failed(item, { status: item.xhr.status, code: body.code || "http_error", message: body.message,
                          limit: body.limit });
      return;
    }
    item.state = "ready";
    item.progress = 1;
    item.meta = { ...body.attachment, localUrl: item.localUrl };
    this.known.set(item.meta.id, item.meta);
    this.render();
  }

  failed(item, err) {
    if (!this.items.includes(item)) return; // cancelled meanwhile
    this.drop(item);
    this.say(refusalWords(err, item.name));
  }

  /** Cancels an upload, or takes back an uploaded file (the server deletes what no message carries). */
  drop(item) {
    this.items = this.items.filter((it) => it !== item);
    if (item.state === "uploading") item.xhr.abort();
    if (item.localUrl) URL.revokeObjectURL(item.localUrl);
    this.render();
  }

  count() {
    return this.items.length;
  }

  /** Whether every file is up (else says so next to the composer). */
  ready() {
    const up = this.items.every((it) => it.state === "ready");
    if (!up) this.say(refusalWords({ code: "uploading" }));
    return up;
  }

  /** The uploaded files' metas for a message (the tray empties; their previews stay with the message). */
  take() {
    const metas = this.items.filter((it) => it.state === "ready").map((it) => it.meta);
    this.items = [];
    this.say("");
    this.render();
    return metas;
  }

  /** Metas of our uploads for the ids of a pending send frame. */
  metas(ids) {
    return (ids || []).map((id) => this.known.get(id)).filter(Boolean);
  }

  /** Another conversation opened: files picked for this one go. */
  switchTo(conv) {
    for (const item of [...this.items]) if (item.conv !== conv) this.drop(item);
    this.say("");
  }

  /** A send refused for its attachments (an `error` frame): in words by the composer; true if it was one. */
  explain(frame) {
    if (!SEND_CODES.has(frame.code)) return false;
    this.say(refusalWords(frame));
    return true;
  }

  reset() {
    for (const item of [...this.items]) this.drop(item);
    this.known.clear();
    this.say("");
    closeViewer();
    forget();
  }

  say(text) {
    $("attach-error").textContent = text;
  }

  render() {
    const tray = $("attach-tray");
    tray.hidden = this.items.length === 0;
    const held = new Map([...tray.children].map((li) => [li.dataset.key, li]));
    tray.replaceChildren(...this.items.map((item) => this.fill(held.get(item.key) || this.make(item), item)));
  }

  make(item) {
    const li = document.createElement("li");
    li.className = "attach-item";
    li.dataset.key = item.key;
    const preview = document.createElement(item.localUrl ? "img" : "span");
    preview.className = "attach-preview";
    if (item.localUrl) {
      preview.alt = "";
      preview.src = item.localUrl;
      preview.addEventListener("error", () => preview.replaceWith(icon(item.name)));
    } else {
      preview.textContent = badgeOf(item.name);
      preview.setAttribute("aria-hidden", "true");
    }
    const text = document.createElement("span");
    text.className = "attach-text";
    const name = document.createElement("span");
    name.className = "attach-name";
    name.textContent = item.name;
    const size = document.createElement("span");
    size.className = "attach-size";
    size.textContent = sizeWords(item.size);
    const bar = document.createElement("progress");
    bar.max = 1;
    bar.value = item.progress;
    bar.setAttribute("aria-label", `Uploading ${item.name}`);
    text.append(name, size, bar);
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "attach-remove secondary";
    remove.textContent = "✕";
    remove.addEventListener("click", () => { this.drop(item); $("composer-body").focus(); });
    li.append(preview, text, remove);
    return li;
  }

  fill(li, item) {
    const uploading = item.state === "uploading";
    li.dataset.state = item.state;
    const bar = li.querySelector("progress");
    bar.hidden = !uploading;
    if (!uploading) bar.value = 1;
    li.querySelector(".attach-size").textContent = uploading ? sizeWords(item.size) : `${sizeWords(item.size)} · ready`;
    li.querySelector(".attach-remove").setAttribute("aria-label",
      uploading ? `Cancel the upload of ${item.name}` : `Remove ${item.name}`);
    return li;
  }
}

function icon(name) {
  const span = document.createElement("span");
  span.className = "attach-preview";
  span.textContent = badgeOf(name);
  span.setAttribute("aria-hidden", "true");
  return span;
}

/** A send's extra fields for files: {attachments: [ids]} or nothing. */
export function withFiles(metas) {
  return metas.length ? { attachments: metas.map((m) => m.id) } : {};
}
