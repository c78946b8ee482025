"""Workers: background roles that consume the message stream (the archiver; later the pusher)."""
