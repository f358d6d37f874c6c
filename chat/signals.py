"""Signals for host code: a message was posted, edited or deleted.

Each is sent once per change, on the node that made it, after the change is stored and
broadcast, with the frame clients got (`message`: type, room, seq, user, body, ts):

    @receiver(message_posted)
    def index_it(sender, *, room, seq, user, message, **kwargs): ...

Receivers may be sync or async. They run outside the publish path, in the order of the
room's seq, so a slow one delays no ack; an exception in one is logged and skips
nothing else.
"""

from __future__ import annotations

from django.dispatch import Signal

message_posted = Signal()
message_edited = Signal()
message_deleted = Signal()
