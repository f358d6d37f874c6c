"""A host project for tests/packaging: the wheel, a fresh venv, `startproject` and the
steps of docs/integrate.md, prepared in the background while the rest of the suite runs
(conftest.py), since most of it is waiting on pip."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from chatcluster.conf import KEYS

ROOT = Path(settings.BASE_DIR)
DOC = ROOT / "docs" / "integrate.md"
WHEELHOUSE = ROOT / ".local" / "wheelhouse"
STEP = re.compile(r"<!-- integrate: (append|write|run)(?: (\S+))? -->\n```\w*\n(.*?)```", re.S)

# The host's own apps: a `chat` app with a Room model, and a custom user model.
HOST_APPS = {
    "accounts/models.py": (
        "from django.contrib.auth.models import AbstractUser\n\n\nclass User(AbstractUser):\n    pass\n"
    ),
    "chat/models.py": (
        "from django.conf import settings\nfrom django.db import models\n\n\n"
        "class Room(models.Model):\n"
        "    name = models.CharField(max_length=50)\n"
        "    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name='rooms')\n"
    ),
}
HOST_SETTINGS = '\nINSTALLED_APPS += ["accounts", "chat"]\nAUTH_USER_MODEL = "accounts.User"\n'


@dataclass
class Host:
    site: Path
    python: Path
    env: dict[str, str]
    port: int = 0
    # The private Redis `runcluster` started, as it prints it: host code outside the nodes uses it too.
    redis_url: str = ""

    def run(self, *args: str) -> str:
        result = subprocess.run(
            [str(self.python), *args], cwd=self.site, env=self.env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def shell(self, code: str) -> str:
        """`manage.py shell -c code` as host code outside the nodes, on the cluster's Redis."""
        result = subprocess.run(
            [str(self.python), "manage.py", "shell", "--no-imports", "-c", code],
            cwd=self.site,
            env=self.env | {"REDIS_URL": self.redis_url},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"{code} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout


def steps() -> list[tuple[str, str, str]]:
    return [(m[1], m[2] or "", m[3]) for m in STEP.finditer(DOC.read_text())]


def build_wheel(out: Path) -> Path:
    """`pip wheel --no-deps .` (docs/integrate.md, step 1), offline: the build backend is in the venv."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    (built,) = out.glob("django_chatcluster-*.whl")
    return built


def prepare_host(base: Path, wheel: Path) -> Host:
    """A fresh project with the wheel installed and steps 1 to 4 of the document applied."""
    if not WHEELHOUSE.is_dir():
        raise RuntimeError(f"{WHEELHOUSE} is missing: `make setup` fetches the wheels a host project installs")
    site = base / "site"
    site.mkdir()
    # A host's environment: none of this test run's own settings leak in.
    env = {k: v for k, v in os.environ.items() if k not in KEYS and not k.startswith(("DJANGO_", "DATABASE_"))}
    env.pop("PYTHONPATH", None)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(site / ".venv")], check=True)
    python = site / ".venv" / "bin" / "python"
    # Step 1, offline: pip from this venv installs into the fresh one.
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-index", "--no-compile"]
    subprocess.run(
        [*install, "--find-links", str(WHEELHOUSE), f"{wheel}[local,client]"],
        check=True,
        capture_output=True,
        env=env,
    )
    made = Host(site=site, python=python, env=env)
    made.run("-m", "django", "startproject", "mysite", ".")
    for app, source in HOST_APPS.items():
        made.run("manage.py", "startapp", app.split("/")[0])
        (site / app).write_text(source)
    with (site / "mysite" / "settings.py").open("a") as settings_file:
        settings_file.write(HOST_SETTINGS)
    for kind, path, code in steps():
        if kind == "append":
            with (site / path).open("a") as target:
                target.write("\n" + code)
        elif kind == "write":
            (site / path).write_text(code)
    made.run("manage.py", "makemigrations", "accounts", "chat")
    return made
