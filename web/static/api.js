// The HTTP API (docs/openapi.yaml), same origin as this page. The token goes only in the
// Authorization header, never in a URL (URLs end up in logs).

export class ApiError extends Error {
  constructor(status, body) {
    super(body.message || `HTTP ${status}`);
    this.status = status;
    this.code = body.code || "http_error";
    this.field = body.field || null; // the request's field it is about, if any
  }
}

export class Api {
  constructor(token) {
    this.token = token; // () => the current token or null
  }

  async call(method, path, body, query) {
    const headers = {};
    const token = this.token();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const url = query ? `${path}?${new URLSearchParams(query)}` : path;
    const init = { method, headers, cache: "no-store" };
    if (body !== undefined) init.body = JSON.stringify(body);
    let response;
    try {
      response = await fetch(url, init);
    } catch (err) {
      throw new ApiError(0, { code: "network", message: "the server cannot be reached" });
    }
    const text = await response.text();
    let data = {};
    try {
      data = text ? JSON.parse(text) : {};
    } catch (err) {
      data = { message: text };
    }
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  signup(username, password) { return this.call("POST", "/v1/signup", { username, password }); }
  login(fields) { return this.call("POST", "/v1/login", fields); }
  logout() { return this.call("POST", "/v1/logout", {}); }
  refresh() { return this.call("POST", "/v1/refresh", {}); }
  me() { return this.call("GET", "/v1/me"); }
  place() { return this.call("GET", "/v1/place"); }
  friends() { return this.call("GET", "/v1/friends"); }
  findUser(username) { return this.call("GET", "/v1/users", undefined, { username }); }
  addFriend(userId) { return this.call("POST", "/v1/friends", { user_id: userId }); }
  removeFriend(userId) { return this.call("DELETE", `/v1/friends/${encodeURIComponent(userId)}`); }
  conversations() { return this.call("GET", "/v1/conversations"); }
  openDm(userId) { return this.call("POST", "/v1/conversations", { user_id: userId }); }
  createGroup(name, members) { return this.call("POST", "/v1/groups", { name, members }); }
  receipts(conv) { return this.call("GET", `/v1/conversations/${encodeURIComponent(conv)}/receipts`); }

  user(id) { return this.call("GET", `/v1/users/${encodeURIComponent(id)}`); }

  // live rooms (docs/openapi.yaml, tag live)
  createLive(title, description) { return this.call("POST", "/v1/live", { title, description }); }
  liveRoom(room) { return this.call("GET", `/v1/live/${encodeURIComponent(room)}`); }
  updateLive(room, fields) { return this.call("PATCH", `/v1/live/${encodeURIComponent(room)}`, fields); }
  liveHistory(room, params) {
    const query = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, String(v)]));
    return this.call("GET", `/v1/live/${encodeURIComponent(room)}/messages`, undefined, query);
  }
  deleteLive(room, id) { return this.call("DELETE", `/v1/live/${encodeURIComponent(room)}/messages/${id}`); }
  pinLive(room, id) {
    const path = `/v1/live/${encodeURIComponent(room)}/pin`;
    return id ? this.call("PUT", path, { id }) : this.call("DELETE", path);
  }
  timeOut(room, user, seconds) {
    return this.call("PUT", `/v1/live/${encodeURIComponent(room)}/timeouts/${encodeURIComponent(user)}`,
                     { duration_s: seconds });
  }
  ban(room, user) { return this.call("PUT", `/v1/live/${encodeURIComponent(room)}/bans/${encodeURIComponent(user)}`, {}); }
  slowMode(room, seconds) { return this.call("PUT", `/v1/live/${encodeURIComponent(room)}/slow_mode`, { seconds }); }

  history(conv, params) {
    const query = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, String(v)]));
    return this.call("GET", `/v1/conversations/${encodeURIComponent(conv)}/messages`, undefined, query);
  }
}
