"""Modules of baton outside this folder, loaded from their files.

The launcher and what it imports run on MiniStack's own interpreter, where baton is not
installed and only this folder is on ``sys.path``: the request guard (baton/httpguard.py) and
the fault catalogue (baton/faults.py) are loaded by path. Standard library only.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load(name: str, path: Path, what: str) -> ModuleType:
    """The module in ``path``, registered as ``name``; ``what`` names it if it cannot load."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"baton launcher: cannot load {what} {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module
