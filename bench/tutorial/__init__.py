"""The Channels tutorial's chat design, as a reference for bench/perf.py.

Each socket opens `/ws/<room>/` (the room comes from the URL path, as in the tutorial),
joins the group of that room on connect, and every frame it sends is `json.loads`-ed and
`group_send`-ed through channels_redis' RedisChannelLayer; every consumer in the group
then does `self.send(text_data=json.dumps(...))`. No database, no auth, default layer
settings. The only addition is an `ack` with the frame's `ref` after `group_send`, so the
load generator can time publish-to-ack the same way for every system it measures.
"""
