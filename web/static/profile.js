// Your profile and devices, a section at the end of the sidebar: display name and bio (PATCH /v1/me)
// and the list of your devices (GET /v1/devices), over the HTTP API (docs/openapi.yaml). A refusal is
// shown next to the form, with the field the server named marked invalid.

import { el } from "./view.js";

export class Profile {
  /** ``api``; ``saved(user)`` once the server took a change (the page shows the new name). */
  constructor({ api, saved }) {
    this.api = api;
    this.saved = saved;
  }

  /** Builds the section (once) and fills it for ``user``. */
  start(user) {
    if (!document.getElementById("profile")) document.querySelector("nav.sidebar").append(this.section());
    this.show(user);
    document.getElementById("profile-error").textContent = "";
    document.getElementById("device-list").replaceChildren();
  }

  /** The form shows ``user``'s name and bio (a field being edited is left alone). */
  show(user) {
    for (const [id, value] of [["profile-name", user.display_name], ["profile-bio", user.bio]]) {
      const field = document.getElementById(id);
      if (field && document.activeElement !== field) field.value = value || "";
    }
  }

  section() {
    return el("section", { id: "profile", "aria-labelledby": "profile-heading" },
      el("h2", { id: "profile-heading", text: "Profile" }),
      el("form", { id: "profile-form", class: "inline-form", onsubmit: (e) => { e.preventDefault(); this.save(); } },
        el("label", { for: "profile-name", text: "Display name" }),
        el("input", { id: "profile-name", maxlength: 64, autocomplete: "nickname", "aria-describedby": "profile-error" }),
        el("label", { for: "profile-bio", text: "Bio" }),
        el("textarea", { id: "profile-bio", rows: 2, maxlength: 512, "aria-describedby": "profile-error" }),
        el("div", { class: "row" }, el("button", { type: "submit", id: "profile-save", text: "Save profile" })),
        el("p", { id: "profile-error", class: "error", role: "alert" })),
      el("details", { id: "devices", ontoggle: (e) => { if (e.currentTarget.open) this.loadDevices(); } },
        el("summary", { text: "Your devices" }),
        el("ul", { id: "device-list", class: "people" }),
        el("p", { id: "devices-error", class: "error", role: "alert" })));
  }

  async save() {
    const fields = { display_name: document.getElementById("profile-name").value.trim(),
                     bio: document.getElementById("profile-bio").value };
    const error = document.getElementById("profile-error");
    for (const id of ["profile-name", "profile-bio"]) document.getElementById(id).removeAttribute("aria-invalid");
    try {
      const { user } = await this.api.call("PATCH", "/v1/me", fields);
      error.textContent = "Saved.";
      error.classList.add("ok");
      this.saved(user);
    } catch (err) {
      error.classList.remove("ok");
      error.textContent = err.message;
      const field = err.field === "bio" ? "profile-bio" : "profile-name";
      document.getElementById(field).setAttribute("aria-invalid", "true");
    }
  }

  async loadDevices() {
    const error = document.getElementById("devices-error");
    try {
      const { devices } = await this.api.call("GET", "/v1/devices");
      error.textContent = "";
      document.getElementById("device-list").replaceChildren(...devices.map((d) =>
        el("li", { "data-device": d.id, class: d.current ? "current" : null },
          el("span", { class: "person", text: `${d.name || "device"}${d.current ? " (this one)" : ""}` }),
          el("time", { class: "muted", datetime: new Date(d.created_at).toISOString(),
                       text: `since ${new Date(d.created_at).toLocaleDateString()}` }))));
    } catch (err) {
      error.textContent = err.message;
    }
  }
}
