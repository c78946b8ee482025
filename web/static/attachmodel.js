// Attachments on the client (docs/protocol.md §20, ADR 0032), without DOM or sockets: sizes in words,
// an upload's refusal in words, the box a thumbnail takes (so a message's height is known before the
// picture comes), and what a message with files is called where there is room for a few words only
// ("Photo", "File"). attach.js, media.js and viewer.js draw with these.

export const MAX_FILES = 10; // attachments per message (§20)
export const THUMB_BOX = 240; // px: the longer side a thumbnail is drawn at in a message (at most)

export function isImage(att) {
  return Boolean(att && att.thumb && att.width > 0 && att.height > 0);
}

/** 1536 → "1.5 KB"; bytes in powers of 1024, as file managers say. */
export function sizeWords(bytes) {
  if (!(bytes >= 0)) return "";
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${value < 10 ? value.toFixed(1).replace(/\.0$/, "") : Math.round(value)} ${units[unit]}`;
}

/** A file's kind in a few letters for its badge: "PDF", "TXT", "ZIP" (its name's extension), else "FILE". */
export function badgeOf(name) {
  const ext = /\.([A-Za-z0-9]{1,4})$/.exec(name || "");
  return ext ? ext[1].toUpperCase() : "FILE";
}

/** The drawn size of a thumbnail of a `width`×`height` image: within `box`×`box`, never enlarged. */
export function thumbSize(width, height, box = THUMB_BOX) {
  if (!(width > 0 && height > 0)) return { width: box, height: box };
  const scale = Math.min(1, box / Math.max(width, height));
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/** A refused upload (or send) in words for the line next to the composer. `err`: {status, code, limit}. */
export function refusalWords(err, name) {
  const file = name ? `“${name}”` : "The file";
  switch (err.code) {
    case "attachment_too_large":
      return `${file} is too large: a file can be at most ${sizeWords(err.limit)}.`;
    case "disguised_file":
      return `${file} was refused: it is presented as an image, but it is not one.`;
    case "bad_image":
      return `${file} could not be read as an image.`;
    case "not_member":
      return "You are not a member of this conversation any more, so nothing can be sent here.";
    case "network":
      return `${file} could not be uploaded: the server cannot be reached. Check the connection and try again.`;
    case "unknown_attachment":
    case "foreign_attachment":
    case "attachment_in_use":
      return "A file of this message is no longer available; attach it again.";
    case "too_many_files":
      return `At most ${MAX_FILES} files go in one message.`;
    case "uploading":
      return "Wait for the files to finish uploading, then send.";
    default:
      return `${file} could not be uploaded: ${err.message || "the server refused it"}.`;
  }
}

/** Codes of a send refused for its attachments: shown next to the composer, not in the status line. */
export const SEND_CODES = new Set(["unknown_attachment", "foreign_attachment", "attachment_in_use"]);

/** "Photo", "2 photos", "File", "3 files" (the push's words, §20), or "" for a message without files. */
export function filesWords(attachments) {
  const list = attachments || [];
  if (list.length === 0) return "";
  const photos = list.every(isImage);
  if (list.length === 1) return photos ? "Photo" : "File";
  return `${list.length} ${photos ? "photos" : "files"}`;
}

/** A message's text where a few words go (the list's line, a reply's quote): its body, or its files. */
export function shortText(msg) {
  if (!msg) return "";
  return msg.body || filesWords(msg.attachments);
}

/** The quote of a reply whose quote has no text: "Photo"/"File" when the original (held) has files,
 *  otherwise the original was deleted (a delete blanks the quotes of its replies, §19). */
export function quoteText(reply, original) {
  if (reply.quote && reply.quote.body) return reply.quote.body;
  if (original && !original.deleted && original.attachments && original.attachments.length) {
    return filesWords(original.attachments);
  }
  return "message deleted";
}

/** The images of shown messages in order, for the viewer: [{msg, att}] (deleted messages have none). */
export function imagesOf(messages) {
  const out = [];
  for (const msg of messages) {
    if (msg.deleted) continue;
    for (const att of msg.attachments || []) if (isImage(att)) out.push({ msg, att });
  }
  return out;
}
