"""Prometheus metrics of this node, served at /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONNECTIONS = Gauge("chat_connections", "Open WebSocket connections on this node")
CONNECTS = Counter("chat_connects", "WebSocket connections accepted", ["result"])
SUBSCRIPTIONS = Gauge("chat_subscriptions", "Room subscriptions held by sockets on this node")
ROOMS = Gauge("chat_rooms_active", "Rooms with at least one subscriber on this node")
MESSAGES_IN = Counter("chat_messages_published", "Messages stored by publishes on this node")
FRAMES_IN = Counter("chat_frames_received", "Client frames received", ["type"])
FRAMES_OUT = Counter("chat_frames_delivered", "Room frames written to local sockets")
ERRORS = Counter("chat_errors_sent", "Error frames sent", ["code"])
GAP_REPAIRS = Counter("chat_gap_repairs", "Seq gaps filled from the database by the node")
DRAINING = Gauge("chat_draining", "1 while this node drains before exiting")
SLOW_CLOSES = Counter("chat_send_queue_closes", "Sockets closed with 1013 for falling SEND_QUEUE_MAX frames behind")
REDIS_ERRORS = Counter("chat_redis_errors", "Redis calls that failed", ["where"])
REDIS_RESTORES = Counter("chat_redis_restores", "Times the node restored its subscriptions after Redis came back")
TAIL_REPAIRS = Counter("chat_tail_repairs", "Newest messages read from the database after their broadcast was lost")
MESSAGES_DELIVERED = Counter(
    "chat_messages_delivered", "Message frames written to local sockets, counted once per broadcast with inc(n)"
)
# From the message's creation time on the publishing node to this node's fan-out: clocks
# of different hosts must be in sync (NTP) for the cross-node figures to mean anything.
PUBLISH_TO_DELIVER = Histogram(
    "chat_publish_to_deliver_seconds",
    "Seconds from a message's creation to its fan-out on this node, once per broadcast per node",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PRESENCE_ENTRIES = Gauge("chat_presence_entries", "Presence entries (room, connection) this node holds in Redis")
RATE_LIMITED = Counter("chat_rate_limited", "Publishes refused by the per-user rate limit")
SEND_QUEUE_DROPS = Counter(
    "chat_send_queue_drops", "Frames dropped with a socket closed for falling SEND_QUEUE_MAX frames behind"
)

# Show every Redis error site at 0 from the start, so a rate() over them is defined.
for _where in ("watchdog", "broadcast", "lease", "sweep"):
    REDIS_ERRORS.labels(_where)
