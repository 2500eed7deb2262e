"""What tools cannot find by themselves is kept in step with the tree, and says what to add."""

import tomllib

from tests.conftest import FUNCTION_ROOTS, ROOT


def test_mypy_knows_every_function_folder():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    roots = config["mypy_path"].split(":")
    missing = [str(path.relative_to(ROOT)) for path in FUNCTION_ROOTS
               if str(path.relative_to(ROOT)) not in roots]

    assert not missing, f"pyproject.toml [tool.mypy] mypy_path: add {':'.join(missing)}"
