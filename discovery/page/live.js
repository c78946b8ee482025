// The cluster page's live rooms: the top rooms by viewers from /v1/cluster's `live` (discovery/live_rooms.py),
// each added up over the nodes, and the rooms outside the nodes' top (room="_other") as one last row.

import { $, el, fmt, numberCell, scrollTable } from "./dom.js";

const HEADERS = [
  ["Room", "The live room's id; \"other rooms\": every room outside the top PARLEY_LIVE_METRICS_TOP_ROOMS, summed"],
  ["Viewers", "Viewers on every node", true],
  ["In (msg/s)", "Sends accepted per second, last sample", true],
  ["Out (msg/s)", "Messages handed to viewers per second (one per viewer), last sample", true],
  ["Blocked (/s)", "Sends refused by the room's screens (banned words, flood rules) per second", true],
  ["p99 (ms)", "Send accepted → handed to the viewer's socket, p99 over the trailing 10 s", true],
];

function roomRow(r, other) {
  const masked = r.masked_per_s ? ` · ${fmt.rate(r.masked_per_s)} /s accepted with words masked` : "";
  return el("tr", { className: other ? "other" : "", data: { room: r.room } },
    el("th", { scope: "row", text: other ? "other rooms" : r.room }),
    numberCell("viewers", r.viewers, fmt.int(r.viewers)),
    numberCell("in_per_s", r.in_per_s, fmt.rate(r.in_per_s)),
    numberCell("out_per_s", r.out_per_s, fmt.rate(r.out_per_s)),
    numberCell("blocked_per_s", r.blocked_per_s, fmt.rate(r.blocked_per_s), `refused per second${masked}`),
    numberCell("p99_ms", r.p99_ms, fmt.ms(r.p99_ms)));
}

export function renderLive(live) {
  const rows = (live?.rooms || []).map((r) => roomRow(r, false));
  const others = live?.others;
  if (others && (others.viewers || others.in_per_s || others.out_per_s || others.blocked_per_s)) {
    rows.push(roomRow(others, true));
  }
  $("no-live").hidden = rows.length > 0;
  $("live-rooms").hidden = rows.length === 0;
  $("live-rooms").replaceChildren(...(rows.length ? [scrollTable("Top live rooms", HEADERS, rows)] : []));
}
