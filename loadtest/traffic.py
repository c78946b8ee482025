"""The traffic model: what "50 million daily active users" asks of Parley, per second, at the peak.

Every parameter lives in ``TrafficModel`` (one place; docs/capacity.md shows the defaults and the
arithmetic, ``python -m parley.loadtest.traffic`` prints it). The functions are pure: no clock, no I/O.

Scaling down: a load run on one machine cannot open millions of sockets, so each simulated client
stands for ``accel`` real online users: it sends ``accel`` times the real per-user rate (their
messages merged into one connection). A run of ``users`` clients then carries the message traffic
of ``users * accel`` real online users, i.e. the deployment divided by ``scale_factor``. Heartbeats
and connection counts are not accelerated (they are per connection), so the run understates those;
the capacity model takes them from their own measurements instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

DAY_S = 86_400


@dataclass(frozen=True)
class GroupSizes:
    """Group sizes as (smallest, largest, share of group messages) bands; sizes count every member."""

    bands: tuple[tuple[int, int, float], ...] = ((3, 10, 0.60), (11, 30, 0.25), (31, 100, 0.15))

    def __post_init__(self) -> None:
        if abs(sum(b[2] for b in self.bands) - 1.0) > 1e-9:
            raise ValueError("group size shares must add up to 1")
        if any(lo < 2 or hi < lo or hi > 100 for lo, hi, _ in self.bands):
            raise ValueError("group sizes are 2..100 members")

    def mean(self) -> float:
        """Mean members of the group a group message goes to (uniform within a band)."""
        return sum(share * (lo + hi) / 2 for lo, hi, share in self.bands)


@dataclass(frozen=True)
class TrafficModel:
    dau: int = 50_000_000
    messages_per_user_day: float = 40.0  # sent by one daily active user
    peak_factor: float = 5.0  # peak-hour message rate / the day's average rate
    dm_share: float = 0.7  # of messages; the rest go to groups
    group_sizes: GroupSizes = field(default_factory=GroupSizes)
    devices_per_user: float = 1.4  # devices connected per online user
    online_share_peak: float = 0.15  # of DAU connected at the peak
    recipient_online_share: float = 0.3  # of a message's recipients online when it is sent (contacts are correlated)
    friends_per_user: float = 20.0  # presence subscribers of a user
    heartbeat_s: float = 25.0  # client ping interval (protocol default)
    session_s: float = 600.0  # mean length of one connection
    reconnects_per_connection_hour: float = 0.5  # network drops, handovers, redeploys: on top of session ends
    body_bytes: int = 120  # mean message body
    presence_beat_s: float = 5.0  # PARLEY_PRESENCE_BEAT_S: every device each beat, as before ADR 0049 (an upper bound)
    history_pages_per_user_day: float = 20.0  # history pages (50 messages) a daily active user opens
    store_sync_share: float = 0.5  # of connects: behind the archive floor, so sync reads a page from the store

    # ---- messages ----------------------------------------------------------------------------
    def messages_per_s_average(self) -> float:
        return self.dau * self.messages_per_user_day / DAY_S

    def messages_per_s_peak(self) -> float:
        return self.messages_per_s_average() * self.peak_factor

    def group_messages_per_s_peak(self) -> float:
        return self.messages_per_s_peak() * (1 - self.dm_share)

    # ---- who is online -----------------------------------------------------------------------
    def online_users_peak(self) -> float:
        return self.dau * self.online_share_peak

    def connections_peak(self) -> float:
        return self.online_users_peak() * self.devices_per_user

    def send_rate_per_online_user(self) -> float:
        """Messages/s one online user sends at the peak (everyone sends at the same rate)."""
        return self.messages_per_s_peak() / self.online_users_peak()

    # ---- fan-out -----------------------------------------------------------------------------
    def recipients_per_message(self) -> float:
        """Users (sender excluded) a message is addressed to, on average."""
        return self.dm_share * 1 + (1 - self.dm_share) * (self.group_sizes.mean() - 1)

    def device_deliveries_per_message(self) -> float:
        """msg frames written to devices per message: online recipients' devices + the sender's own devices."""
        return (self.recipients_per_message() * self.recipient_online_share + 1) * self.devices_per_user

    def deliveries_per_s_peak(self) -> float:
        return self.messages_per_s_peak() * self.device_deliveries_per_message()

    # ---- connection upkeep -------------------------------------------------------------------
    def heartbeats_per_s_peak(self) -> float:
        return self.connections_peak() / self.heartbeat_s

    def connects_per_s_peak(self) -> float:
        """New WebSocket sessions per second: sessions ending and being replaced, plus drops."""
        conns = self.connections_peak()
        return conns / self.session_s + conns * self.reconnects_per_connection_hour / 3600

    def presence_changes_per_s_peak(self) -> float:
        """Users going online or offline per second (a session of any device; flaps are suppressed,
        so this is an upper bound)."""
        return 2 * self.online_users_peak() / self.session_s

    def presence_frames_per_s_peak(self) -> float:
        """Presence frames pushed to friends' devices per second."""
        return (self.presence_changes_per_s_peak() * self.friends_per_user * self.online_share_peak
                * self.devices_per_user)

    # ---- workers and the store -----------------------------------------------------------------
    def pushes_per_s_peak(self) -> float:
        """Push notifications: one per recipient with no connected device when the message is sent."""
        return self.messages_per_s_peak() * self.recipients_per_message() * (1 - self.recipient_online_share)

    def heartbeat_entries_per_s_peak(self) -> float:
        """Device entries in the nodes' heartbeat batches to the presence workers."""
        return self.connections_peak() / self.presence_beat_s

    def history_pages_per_s_peak(self) -> float:
        return self.dau * self.history_pages_per_user_day / DAY_S * self.peak_factor

    def store_sync_pages_per_s_peak(self) -> float:
        return self.connects_per_s_peak() * self.store_sync_share

    def summary(self) -> dict[str, float]:
        return {
            "messages_per_s_average": self.messages_per_s_average(),
            "messages_per_s_peak": self.messages_per_s_peak(),
            "group_messages_per_s_peak": self.group_messages_per_s_peak(),
            "online_users_peak": self.online_users_peak(),
            "connections_peak": self.connections_peak(),
            "send_rate_per_online_user": self.send_rate_per_online_user(),
            "mean_group_size": self.group_sizes.mean(),
            "recipients_per_message": self.recipients_per_message(),
            "device_deliveries_per_message": self.device_deliveries_per_message(),
            "deliveries_per_s_peak": self.deliveries_per_s_peak(),
            "heartbeats_per_s_peak": self.heartbeats_per_s_peak(),
            "connects_per_s_peak": self.connects_per_s_peak(),
            "presence_changes_per_s_peak": self.presence_changes_per_s_peak(),
            "presence_frames_per_s_peak": self.presence_frames_per_s_peak(),
            "pushes_per_s_peak": self.pushes_per_s_peak(),
            "heartbeat_entries_per_s_peak": self.heartbeat_entries_per_s_peak(),
            "history_pages_per_s_peak": self.history_pages_per_s_peak(),
            "store_sync_pages_per_s_peak": self.store_sync_pages_per_s_peak(),
        }


# ---- scenarios: the model scaled down to one machine ----------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One Locust scenario: ``users`` clients, each standing for ``accel`` real online users."""

    name: str
    users: int
    spawn_rate: float
    run_time_s: int
    accel: float  # real online users one client stands for (its send rate is accel x the real one)
    heartbeat_s: float = 25.0
    session_s: float = 0.0  # mean connected time before a client goes offline by itself; 0: stays
    offline_s: float = 0.0  # mean time offline before it comes back
    disrupt: str = ""  # "kill" or "drain" a node at half time (the run harness does it)
    group_size: int = 10  # largest group the seed makes (at most the cell size)
    description: str = ""

    def send_rate_per_client(self, model: TrafficModel) -> float:
        return model.send_rate_per_online_user() * self.accel

    def messages_per_s(self, model: TrafficModel) -> float:
        return self.users * self.send_rate_per_client(model)

    def represented_online_users(self) -> float:
        return self.users * self.accel

    def scale_factor(self, model: TrafficModel) -> float:
        """How many times smaller than the whole deployment at the peak (in message traffic)."""
        return model.online_users_peak() / self.represented_online_users()


MODEL = TrafficModel()

SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("smoke", users=10, spawn_rate=10, run_time_s=10, accel=65, heartbeat_s=5, group_size=5,
             description="a few users, DMs and one small group, about 1 message/s each"),
    Scenario("steady", users=100, spawn_rate=20, run_time_s=60, accel=40, group_size=50,
             description="an average hour's shape: 4,000 online users' messages through 100 clients"),
    Scenario("peak", users=100, spawn_rate=20, run_time_s=60, accel=200, group_size=100,
             description="the peak: 20,000 online users' messages (one node's planned share) through 100 clients"),
    Scenario("reconnect-storm", users=100, spawn_rate=50, run_time_s=40, accel=40, group_size=50, disrupt="kill",
             description="steady load; at half time a node is killed (or drained) and its clients reconnect"),
    Scenario("presence-churn", users=100, spawn_rate=20, run_time_s=40, accel=20, session_s=8, offline_s=4,
             group_size=10, description="friends connecting and disconnecting; presence announcements measured"),
)}


def scenario(name: str, **overrides: object) -> Scenario:
    try:
        base = SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None
    return replace(base, **overrides) if overrides else base  # type: ignore[arg-type]


def fmt(v: float) -> str:
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:,.4g}"


def arithmetic(model: TrafficModel = MODEL) -> list[str]:
    """The model's derivation, line by line, as docs/capacity.md shows it."""
    m, g = model, model.group_sizes
    return [
        f"messages/s, average  = {m.dau:,} DAU x {fmt(m.messages_per_user_day)} msgs/day / 86,400 s "
        f"= {fmt(m.messages_per_s_average())}",
        f"messages/s, peak     = {fmt(m.messages_per_s_average())} x {fmt(m.peak_factor)} (peak factor) "
        f"= {fmt(m.messages_per_s_peak())}  (groups {fmt(1 - m.dm_share)}: {fmt(m.group_messages_per_s_peak())})",
        f"online users, peak   = {m.dau:,} x {fmt(m.online_share_peak)} = {fmt(m.online_users_peak())}",
        f"connections, peak    = {fmt(m.online_users_peak())} x {fmt(m.devices_per_user)} devices "
        f"= {fmt(m.connections_peak())}",
        f"send rate per user   = {fmt(m.messages_per_s_peak())} / {fmt(m.online_users_peak())} "
        f"= {fmt(m.send_rate_per_online_user())} msg/s (one every {fmt(1 / m.send_rate_per_online_user())} s)",
        "mean group size      = " + " + ".join(f"{fmt(s)} x {(lo + hi) / 2:g}" for lo, hi, s in g.bands)
        + f" = {fmt(g.mean())}",
        f"recipients/message   = {fmt(m.dm_share)} x 1 + {fmt(1 - m.dm_share)} x ({fmt(g.mean())} - 1) "
        f"= {fmt(m.recipients_per_message())}",
        f"device msgs/message  = ({fmt(m.recipients_per_message())} x {fmt(m.recipient_online_share)} online + 1 "
        f"sender) x {fmt(m.devices_per_user)} = {fmt(m.device_deliveries_per_message())}",
        f"deliveries/s, peak   = {fmt(m.messages_per_s_peak())} x {fmt(m.device_deliveries_per_message())} "
        f"= {fmt(m.deliveries_per_s_peak())}",
        f"heartbeats/s, peak   = {fmt(m.connections_peak())} / {fmt(m.heartbeat_s)} s "
        f"= {fmt(m.heartbeats_per_s_peak())}",
        f"connects/s, peak     = {fmt(m.connections_peak())} / {fmt(m.session_s)} s + "
        f"{fmt(m.connections_peak())} x {fmt(m.reconnects_per_connection_hour)}/h "
        f"= {fmt(m.connects_per_s_peak())}",
        f"presence frames/s    = 2 x {fmt(m.online_users_peak())} / {fmt(m.session_s)} s x "
        f"{fmt(m.friends_per_user)} friends x {fmt(m.online_share_peak)} online x {fmt(m.devices_per_user)} "
        f"= {fmt(m.presence_frames_per_s_peak())}",
        f"pushes/s, peak       = {fmt(m.messages_per_s_peak())} x {fmt(m.recipients_per_message())} recipients x "
        f"{fmt(1 - m.recipient_online_share)} with no device connected = {fmt(m.pushes_per_s_peak())}",
        f"heartbeat entries/s  = {fmt(m.connections_peak())} devices / {fmt(m.presence_beat_s)} s "
        f"= {fmt(m.heartbeat_entries_per_s_peak())}",
        f"history pages/s      = {m.dau:,} x {fmt(m.history_pages_per_user_day)}/day / 86,400 s x "
        f"{fmt(m.peak_factor)} = {fmt(m.history_pages_per_s_peak())}",
        f"store sync pages/s   = {fmt(m.connects_per_s_peak())} connects x {fmt(m.store_sync_share)} behind "
        f"the archive floor = {fmt(m.store_sync_pages_per_s_peak())}",
    ]


def scenario_table(model: TrafficModel = MODEL) -> list[str]:
    rows = ["| scenario | clients | accel | msg/s per client | msg/s total | stands for online users "
            "| 1/scale of the peak | run |",
            "|---|---|---|---|---|---|---|---|"]
    for s in SCENARIOS.values():
        rows.append(f"| {s.name} | {s.users} | {fmt(s.accel)} | {fmt(s.send_rate_per_client(model))} "
                    f"| {fmt(s.messages_per_s(model))} | {fmt(s.represented_online_users())} "
                    f"| {fmt(s.scale_factor(model))} | {s.run_time_s} s |")
    return rows


def main() -> int:
    print("\n".join(arithmetic()))
    print()
    print("\n".join(scenario_table()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

