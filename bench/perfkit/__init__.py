"""The parts of bench/perf.py, by job.

systems   start and stop the systems measured (ours, tutorial, bare, uvicorn), each with a
          Redis of its own; plain processes, loopback only.
measure   what is read from outside: CPU and RSS from /proc, Redis INFO, percentiles.
loadgen   the load generator: picows sockets on uvloop, rooms, publishing at a rate.
rates     the throughput, latency, CPU and memory phases (connect, rate steps, ack step,
          big room).
idle      upkeep of idle subscribed sockets and the connect rate from zero.
storm     a reconnect storm after `kill -9` of one of two nodes (ours only).
report    the table, bench/results/perf.json and docs/bench.png.

Importing this package sets Django up (the cluster helpers read its settings) and
quiets picows' per-connection logging.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

import django  # noqa: E402

django.setup()
# Django's logging config lets picows log every connect and disconnect at INFO.
logging.getLogger("picows").setLevel(logging.WARNING)
