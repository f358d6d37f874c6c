"""Settings refuse to start without a secret key, outside the local launcher's checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from django.conf import settings


def import_settings_in(tmp: Path, **env: str) -> subprocess.CompletedProcess[str]:
    # A copy of the project with no .local/ directory: what a fresh deployment sees.
    shutil.copytree(Path(settings.BASE_DIR) / "project", tmp / "project")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    return subprocess.run(
        [sys.executable, "-c", "import project.settings as s; print(len(s.SECRET_KEY))"],
        cwd=tmp,
        env={**clean, "PYTHONPATH": str(tmp), **env},
        capture_output=True,
        text=True,
    )


def test_without_a_secret_key_the_process_refuses_to_start_and_says_why(tmp_path: Path) -> None:
    result = import_settings_in(tmp_path)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_a_secret_key_from_the_environment_is_used(tmp_path: Path) -> None:
    result = import_settings_in(tmp_path, DJANGO_SECRET_KEY="k" * 50)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "50"


def settings_value(tmp: Path, expression: str, **env: str) -> subprocess.CompletedProcess[str]:
    shutil.copytree(Path(settings.BASE_DIR) / "project", tmp / "project", dirs_exist_ok=True)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "REDIS_", "LOG_"))}
    return subprocess.run(
        [sys.executable, "-c", f"import project.settings as s; print(repr({expression}))"],
        cwd=tmp,
        env={**clean, "PYTHONPATH": str(tmp), "DJANGO_SECRET_KEY": "k" * 50, **env},
        capture_output=True,
        text=True,
    )


def settled_value(tmp: Path, expression: str, **env: str) -> str:
    """`expression`'s repr under `env`, from settings that must import cleanly."""
    result = settings_value(tmp, expression, **env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_log_format_is_json_or_text(tmp_path: Path) -> None:
    assert settings_value(tmp_path, "s.LOG_FORMAT", LOG_FORMAT="text").stdout.strip() == "'text'"
    # Not a terminal here: JSON lines by default.
    assert settings_value(tmp_path, "s.LOG_FORMAT").stdout.strip() == "'json'"
    assert "LOG_FORMAT" in settings_value(tmp_path, "s.LOG_FORMAT", LOG_FORMAT="xml").stderr


def pool_settings_in(tmp: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The default database's CONN_MAX_AGE and pool options, as a fresh process reads them."""
    return settings_value(
        tmp, "(s.DATABASES['default']['CONN_MAX_AGE'], s.DATABASES['default']['OPTIONS'].get('pool'))", **env
    )


def test_db_pool_on_postgresql_pools_connections_instead_of_keeping_them(tmp_path: Path) -> None:
    result = pool_settings_in(
        tmp_path, DATABASE_URL="postgres://u@127.0.0.1:5432/d", DB_POOL="true", DB_POOL_MAX_SIZE="4"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(0, {'min_size': 2, 'max_size': 4, 'timeout': 5})"


def test_db_pool_with_a_minimum_above_its_maximum_refuses_to_start(tmp_path: Path) -> None:
    result = pool_settings_in(
        tmp_path,
        DATABASE_URL="postgres://u@127.0.0.1:5432/d",
        DB_POOL="true",
        DB_POOL_MIN_SIZE="5",
        DB_POOL_MAX_SIZE="4",
    )
    assert result.returncode != 0
    assert "DB_POOL_MIN_SIZE=5 is larger than DB_POOL_MAX_SIZE=4" in result.stderr


def test_db_pool_leaves_sqlite_alone(tmp_path: Path) -> None:
    result = pool_settings_in(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", DB_POOL="true")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(60, None)"
