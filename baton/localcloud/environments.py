"""The two virtualenvs behind the embedded local cloud, created once and reused.

- ``ministack``: the emulator itself (never runs function code);
- ``lambda-runtime``: the interpreter function code runs on, holding only what AWS's Python
  runtime provides, so a dependency missing from a function's layer fails locally too.

Each lives in a folder named after a hash of its requirements file: changing a pin builds a new
one beside the old, and a half-built environment (no ``.ready`` marker) is rebuilt from scratch.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from baton.errors import BatonError

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Environment:
    name: str
    requirements: Path

    def folder(self, venvs_dir: Path) -> Path:
        digest = hashlib.sha256(self.requirements.read_bytes()).hexdigest()[:12]
        return venvs_dir / f"{self.name}-{digest}"


MINISTACK = Environment("ministack", HERE / "ministack-requirements.txt")
LAMBDA_RUNTIME = Environment("lambda-runtime", HERE / "lambda-runtime-requirements.txt")


def python_of(folder: Path) -> Path:
    return folder / "bin" / "python"


def ensure(env: Environment, venvs_dir: Path, say: Callable[[str], None]) -> Path:
    """Return the interpreter of ``env``, creating the virtualenv first if needed."""
    folder = env.folder(venvs_dir)
    ready = folder / ".ready"
    if ready.exists():
        return python_of(folder)
    venvs_dir.mkdir(parents=True, exist_ok=True)
    # A lock, because a test session and a user's `baton up` may both get here first.
    with open(venvs_dir / f".{env.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready.exists():
            return python_of(folder)
        shutil.rmtree(folder, ignore_errors=True)
        say(f"Creating the {env.name} environment in {folder} (once; takes a minute)…")
        _run([sys.executable, "-m", "venv", str(folder)], env.name)
        _run(
            [str(python_of(folder)), "-m", "pip", "install", "--quiet",
             "--disable-pip-version-check", "-r", str(env.requirements)],
            env.name,
        )
        ready.write_text(env.requirements.read_text())
    return python_of(folder)


def _run(command: list[str], name: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise BatonError(f"could not create the {name} environment: {' '.join(command)}\n{tail}")
