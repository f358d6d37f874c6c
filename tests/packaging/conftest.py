"""The wheel and a host project, built once per run, in the background from collection on.

Building the wheel, a venv, an offline install of 40-odd wheels and a `startproject` is
mostly waiting on pip: it runs beside the rest of the suite instead of before these tests.
"""

from __future__ import annotations

import shutil
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.packaging.host import Host, build_wheel, prepare_host

_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="host-project")
_prepared: Future[tuple[Path, Host]] | None = None
_base: Path | None = None


def _prepare(base: Path) -> tuple[Path, Host]:
    (base / "dist").mkdir()
    wheel = build_wheel(base / "dist")
    return wheel, prepare_host(base / "host", wheel)


def pytest_collection_finish(session: pytest.Session) -> None:
    global _prepared, _base
    if any(Path(str(item.path)).parent == Path(__file__).parent for item in session.items):
        _base = Path(tempfile.mkdtemp(prefix="chatcluster-host-"))
        (_base / "host").mkdir()
        _prepared = _pool.submit(_prepare, _base)


def pytest_sessionfinish(session: pytest.Session) -> None:
    _pool.shutdown(wait=True)
    if _base is not None:
        shutil.rmtree(_base, ignore_errors=True)


def _result() -> tuple[Path, Host]:
    assert _prepared is not None, "collection did not start the host project"
    return _prepared.result(timeout=600)


@pytest.fixture(scope="session")
def wheel() -> Path:
    return _result()[0]


@pytest.fixture(scope="session")
def host() -> Host:
    return _result()[1]
