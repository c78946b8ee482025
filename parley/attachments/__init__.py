"""Attachments (docs/adr/0024-attachments.md): files uploaded over HTTP into a conversation and referenced by
its messages.

- ``sniff``: the content type, from the bytes only (magic numbers of an allow-list); everything else is
  ``application/octet-stream``, served as a download.
- ``images``: Pillow with a pixel limit; the image re-encoded without its metadata (EXIF location, …), a
  thumbnail, the dimensions.
- ``records``: an attachment's record (``AttachmentMeta``), the rules on it (who may reference it, when the
  sweep deletes it) and the reference a message carries (``parley.store.AttachmentRef``). Pure.
- ``blobs``: the storage interface (put/get/delete by id) and its NATS object store adapter; the records
  live in the KV bucket ``attachments``.
"""
