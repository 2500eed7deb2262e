"""Settings for every test: fake AWS credentials, so no test can ever reach a real account."""

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Each function's folder is its own import root, as in its Lambda zip (the shared layer too).
FUNCTION_ROOTS = sorted(path for path in (ROOT / "functions").iterdir() if path.is_dir())
sys.path[:0] = [str(path) for path in FUNCTION_ROOTS if str(path) not in sys.path]

for variable in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
    os.environ.pop(variable, None)
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    POWERTOOLS_TRACE_DISABLED="1",
    POWERTOOLS_METRICS_NAMESPACE="BatonTest",
    POWERTOOLS_SERVICE_NAME="baton-test",
)


EVENTS = Path(__file__).parent / "events"


@pytest.fixture
def load_event():
    """Load a sample event by file name from tests/events/ (the same files `--event` takes)."""

    def load(name: str) -> dict:
        return json.loads((EVENTS / name).read_text())

    return load


# The packages deployed as Lambda code: their module-level caches live as long as a container.
FUNCTION_PACKAGES = ("orchestrator", *(package.name for root in FUNCTION_ROOTS
                                       for package in root.iterdir()
                                       if (package / "__init__.py").exists()))


def reset_containers() -> None:
    """Forget what a warm container keeps: AWS clients, settings, handlers' configured objects.

    Clients come from the one registry (pipeline.aws); the rest are the ``functools.cache``
    functions of the function packages (``get_settings``, a handler's ``fetcher()`` ...).
    """
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in FUNCTION_PACKAGES:
            continue
        for value in list(vars(module).values()):
            if getattr(value, "__module__", None) == name and hasattr(value, "cache_clear"):
                value.cache_clear()


@pytest.fixture(autouse=True)
def _new_container() -> Iterator[None]:
    """Every test starts as a cold container (and leaves none of its clients to the next)."""
    reset_containers()
    yield
    reset_containers()
