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
