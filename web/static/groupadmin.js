// The open conversation's settings panel, under its header: mute (any conversation) and, for a group,
// rename, members (add, remove, make or unmake admin) and leave, over the HTTP API (docs/openapi.yaml,
// /v1/groups and /v1/conversations/{conv}/mute). Each control is shown only to whom the server lets
// use it (the rules in api/groups.py), and each form's error is shown next to that form. The change
// itself reaches every member's devices as a `group` frame, which reloads the conversation list, so
// the panel simply draws the conversation as it is now.

import { el } from "./view.js";
import { nameOf } from "./model.js";

/** What ``me`` may do in a group: rename, add and remove (owner, admin), set roles (owner). */
export function powersOf(conv, me) {
  const role = roleOf(conv, me);
  const manage = role === "owner" || role === "admin";
  return {
    rename: manage,
    add: manage,
    roles: role === "owner",
    remove: (user) => user !== me && manage && roleOf(conv, user) !== "owner" &&
      (role === "owner" || roleOf(conv, user) === "member"),
  };
}

export function roleOf(conv, user) {
  return (conv.roles && conv.roles[user]) || "member";
}

export class GroupAdmin {
  /** ``api``; ``me()`` → my user id; ``friends()`` → my friends (users); ``changed()`` after a change
   *  (reload the list now, before the frame comes); ``left(conv)`` after leaving. */
  constructor({ api, me, friends, changed, left }) {
    Object.assign(this, { api, me, friends, changed, left });
    this.muted = new Set(); // conversations muted (GET /v1/push/settings)
    this.conv = null;
    this.drawn = "";
  }

  /** Builds the panel into the conversation pane (once) and reads the muted conversations. */
  async start() {
    if (!document.getElementById("conv-settings")) {
      document.querySelector("#conversation .conv-header").after(this.panel());
    }
    try {
      const settings = await this.api.call("GET", "/v1/push/settings");
      this.muted = new Set(settings.muted_conversations || []);
    } catch (err) {
      this.muted = new Set();
    }
  }

  reset() {
    this.muted = new Set();
    this.conv = null;
    this.drawn = "";
  }

  panel() {
    const error = (id) => el("p", { id, class: "error", role: "alert" });
    return el("details", { id: "conv-settings", class: "conv-settings", hidden: true },
      el("summary", { id: "conv-settings-summary", text: "Settings" }),
      el("div", { class: "settings-body" },
        el("label", { class: "check", for: "mute-toggle" },
          el("input", { type: "checkbox", id: "mute-toggle", "aria-describedby": "mute-error",
                        onchange: (e) => this.mute(e.currentTarget.checked) }),
          " Mute notifications"),
        error("mute-error"),
        el("div", { id: "group-admin" },
          el("form", { id: "group-rename-form", class: "inline-form", onsubmit: (e) => this.submit(e, () => this.rename()) },
            el("label", { for: "group-rename", text: "Group name" }),
            el("div", { class: "row" },
              el("input", { id: "group-rename", maxlength: 64, required: true, "aria-describedby": "group-rename-error" }),
              el("button", { type: "submit", text: "Rename" })),
            error("group-rename-error")),
          el("h3", { class: "settings-heading", text: "Members" }),
          el("ul", { id: "group-member-list", class: "people" }),
          error("group-members-error"),
          el("form", { id: "group-add-form", class: "inline-form", onsubmit: (e) => this.submit(e, () => this.add()) },
            el("label", { for: "group-add", text: "Add a friend" }),
            el("div", { class: "row" },
              el("select", { id: "group-add", required: true, "aria-describedby": "group-add-error" }),
              el("button", { type: "submit", text: "Add" })),
            error("group-add-error")),
          el("button", { type: "button", id: "group-leave", class: "secondary danger", onclick: () => this.leave() },
            "Leave group"),
          error("group-leave-error"))));
  }

  /** Draws the panel for ``conv`` (null: none open); cheap when nothing it shows changed. */
  render(conv) {
    const box = document.getElementById("conv-settings");
    if (!box) return;
    box.hidden = !conv;
    if (conv) conv.muted = this.muted.has(conv.id);
    const me = this.me();
    const key = conv ? JSON.stringify([conv.id, conv.name, conv.members.map((u) => [u.id, nameOf(u)]), conv.roles,
                                       conv.muted, this.friends().map((u) => u.id)]) : "";
    if (key === this.drawn) return;
    if (!conv || conv.id !== this.conv) this.clearErrors();
    this.drawn = key;
    this.conv = conv ? conv.id : null;
    if (!conv) return;
    document.getElementById("mute-toggle").checked = conv.muted;
    const group = conv.kind === "group";
    document.getElementById("group-admin").hidden = !group;
    if (!group) return;
    const can = powersOf(conv, me);
    const name = document.getElementById("group-rename");
    document.getElementById("group-rename-form").hidden = !can.rename;
    if (document.activeElement !== name) name.value = conv.name;
    document.getElementById("group-add-form").hidden = !can.add;
    this.drawMembers(conv, can);
    this.drawCandidates(conv);
  }

  /** Marks muted conversations in the list (the mark is drawn by groupadmin.css). */
  markList() {
    for (const button of document.querySelectorAll("#conv-list button[data-conv]")) {
      const muted = this.muted.has(button.dataset.conv);
      if ((button.dataset.muted === "true") !== muted) button.dataset.muted = String(muted);
    }
  }

  drawMembers(conv, can) {
    const me = this.me();
    const rows = conv.members.map((user) => {
      const role = roleOf(conv, user.id);
      const who = user.id === me ? `${nameOf(user)} (you)` : nameOf(user);
      const li = el("li", { "data-user": user.id, "data-role": role },
        el("span", { class: "person", text: who }),
        role === "member" ? null : el("span", { class: "role", text: role }));
      if (can.roles && user.id !== me && role !== "owner") {
        const next = role === "admin" ? "member" : "admin";
        li.append(el("button", { type: "button", class: "secondary set-role", "data-role": next,
                                 "aria-label": `Make ${nameOf(user)} ${next === "admin" ? "an admin" : "a member"}`,
                                 onclick: () => this.setRole(user.id, next),
                                 text: next === "admin" ? "Make admin" : "Remove admin" }));
      }
      if (can.remove(user.id)) {
        li.append(el("button", { type: "button", class: "secondary remove-member", "aria-label": `Remove ${nameOf(user)}`,
                                 onclick: () => this.remove(user.id), text: "Remove" }));
      }
      return li;
    });
    document.getElementById("group-member-list").replaceChildren(...rows);
  }

  drawCandidates(conv) {
    const inGroup = new Set(conv.members.map((u) => u.id));
    const select = document.getElementById("group-add");
    const chosen = select.value;
    const options = this.friends().filter((u) => !inGroup.has(u.id))
      .map((u) => el("option", { value: u.id, text: nameOf(u), selected: u.id === chosen }));
    select.replaceChildren(...options);
    select.disabled = options.length === 0;
    if (!options.length) select.append(el("option", { value: "", text: "All your friends are in it" }));
  }

  clearErrors() {
    for (const p of document.querySelectorAll("#conv-settings .error")) p.textContent = "";
    for (const i of document.querySelectorAll("#conv-settings [aria-invalid]")) i.removeAttribute("aria-invalid");
  }

  async submit(event, work) {
    event.preventDefault();
    await work();
  }

  /** Runs one change; its error goes to ``errorId`` (and marks ``field`` invalid), a success clears it. */
  async attempt(errorId, work, field = null) {
    const out = document.getElementById(errorId);
    const input = field ? document.getElementById(field) : null;
    try {
      await work();
      out.textContent = "";
      input?.removeAttribute("aria-invalid");
      return true;
    } catch (err) {
      out.textContent = err.message || String(err);
      input?.setAttribute("aria-invalid", "true");
      return false;
    }
  }

  path(suffix = "") {
    return `/v1/groups/${encodeURIComponent(this.conv)}${suffix}`;
  }

  async rename() {
    const name = document.getElementById("group-rename").value.trim();
    if (await this.attempt("group-rename-error", () => this.api.call("PATCH", this.path(), { name }), "group-rename")) {
      document.getElementById("group-rename").blur();
      this.changed();
    }
  }

  async add() {
    const user = document.getElementById("group-add").value;
    if (!user) return;
    const body = { user_ids: [user] };
    if (await this.attempt("group-add-error", () => this.api.call("POST", this.path("/members"), body), "group-add")) {
      this.changed();
    }
  }

  async remove(user) {
    const path = this.path(`/members/${encodeURIComponent(user)}`);
    if (await this.attempt("group-members-error", () => this.api.call("DELETE", path))) this.changed();
  }

  async setRole(user, role) {
    const path = this.path(`/members/${encodeURIComponent(user)}/role`);
    if (await this.attempt("group-members-error", () => this.api.call("PUT", path, { role }))) this.changed();
  }

  async leave() {
    const conv = this.conv;
    const path = this.path(`/members/${encodeURIComponent(this.me())}`);
    if (await this.attempt("group-leave-error", () => this.api.call("DELETE", path))) this.left(conv);
  }

  async mute(muted) {
    const conv = this.conv;
    const path = `/v1/conversations/${encodeURIComponent(conv)}/mute`;
    const ok = await this.attempt("mute-error", () => this.api.call("PUT", path, { muted }));
    if (ok && muted) this.muted.add(conv);
    else if (ok) this.muted.delete(conv);
    else document.getElementById("mute-toggle").checked = !muted;
    this.drawn = "";
    this.changed();
  }
}
