"""The edge node: WebSocket connections of devices, subscribed by interest to NATS delivery subjects."""
