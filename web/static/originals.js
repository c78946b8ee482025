// The originals of replies that quote no text (docs/protocol.md §19, §20; ADR 0032). A quote is
// {from, body} taken at send time, and a photo without text quotes "" like a deleted message does; the
// client tells them apart by the original. A history page can hold a reply whose original is older than
// every page held: its state is asked once (the newest entry before the original's id + 1 is the
// original, read from the store), so the quote says "Photo" rather than "message deleted".

/** Asks for the originals `messages`' replies need that `conv` does not hold; `redraw` once known. */
export async function lookUpOriginals(conv, messages, history, redraw) {
  conv.originals ??= new Map(); // original's id → its stored entry (null while asked)
  const wanted = [...new Set(messages
    .filter((m) => m.reply_to && m.quote && !m.quote.body)
    .map((m) => m.reply_to)
    .filter((id) => !conv.messages.has(id) && !conv.originals.has(id)))];
  if (wanted.length === 0) return;
  for (const id of wanted) conv.originals.set(id, null);
  await Promise.all(wanted.map(async (id) => {
    try {
      const page = await history(conv.id, { before: id + 1, limit: 1 });
      const found = page.messages.find((m) => m.id === id);
      if (found) conv.originals.set(id, found);
    } catch (err) {
      conv.originals.delete(id); // asked again with the next page
    }
  }));
  redraw();
}

/** The original of a reply: held, or looked up. */
export function originalOf(conv, reply) {
  return conv.messages.get(reply.reply_to) || conv.originals?.get(reply.reply_to) || null;
}
