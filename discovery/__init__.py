"""Discovery: knows the live edge nodes (from the NATS KV registry) and places clients on them."""
