// Friend changes as they happen: the `friend` frame (docs/protocol.md §5) moves a user between the
// lists the page shows (friends, incoming requests, outgoing requests), so nothing polls /v1/friends.
// The lists are read once at start and again after a reconnect (frames missed while away are not
// replayed); every change in between is a frame, or the answer to the page's own request.

const LISTS = ["friends", "incoming", "outgoing"];

/** The lists with ``user`` in the one ``state`` names (none: in no list); the inputs are not changed. */
export function applyFriend(lists, user, state) {
  const out = {};
  for (const name of LISTS) out[name] = (lists[name] || []).filter((u) => u.id !== user.id);
  if (LISTS.includes(state)) out[state] = [...out[state], user].sort(byName);
  return out;
}

function byName(a, b) {
  const name = (u) => (u.display_name || u.username || u.id).toLowerCase();
  return name(a).localeCompare(name(b)) || a.id.localeCompare(b.id);
}

/** Applies `friend` frames in the order they came, even when one needs the user looked up first (a
 *  stranger's request): ``lookup(id)`` → the user; ``apply(user, state)`` updates the page. */
export class FriendEvents {
  constructor({ lookup, apply, report }) {
    this.lookup = lookup;
    this.apply = apply;
    this.report = report;
    this.queue = Promise.resolve();
  }

  handle(frame) {
    this.queue = this.queue.then(async () => {
      try {
        this.apply(await this.lookup(frame.user), frame.state);
      } catch (err) {
        this.report(err);
      }
    });
    return this.queue;
  }
}

/** Someone's new name or bio (a `user` frame): every copy of that user the page holds (the users map,
 *  the friend lists, conversations' members) gets it; the page then redraws. */
export function applyProfile(chat, change) {
  const merge = (u) => (u.id === change.id ? { ...u, display_name: change.display_name, bio: change.bio } : u);
  if (chat.users.has(change.id)) chat.users.set(change.id, merge(chat.users.get(change.id)));
  for (const name of LISTS) chat.friends[name] = (chat.friends[name] || []).map(merge);
  for (const conv of chat.convs.values()) conv.members = conv.members.map(merge);
}
