"""The launcher refuses to run a MiniStack whose guarded code differs from what it patches."""

import subprocess
import sys
import types

import pytest

from baton.localcloud import LAUNCHER, baton_home, environments
from baton.localcloud.launcher import (
    PATCHES,
    Edit,
    GuardError,
    Patch,
    Target,
    apply_patches,
    describe,
    pinned_version,
    replace_once,
)

STOCK_MODULE = '''
def greet(name):
    return "hello " + name


HANDLERS = {"greet": greet}
'''


@pytest.fixture
def fake_ministack(tmp_path, monkeypatch):
    """A module standing in for MiniStack's code, and a ``ministack`` package at the pinned version."""
    (tmp_path / "fake_stock.py").write_text(STOCK_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(sys.modules, "ministack", types.SimpleNamespace(__version__=pinned_version()))
    monkeypatch.delitem(sys.modules, "fake_stock", raising=False)
    import fake_stock

    return fake_stock


def test_replaces_a_snippet_found_once():
    assert replace_once("a = 1\nb = 2\n", "b = 2", "b = 3", "demo") == "a = 1\nb = 3\n"


@pytest.mark.parametrize("text", ["a = 1\n", "b = 2\nb = 2\n"])
def test_missing_or_repeated_snippet_stops_with_a_message(text):
    with pytest.raises(GuardError) as stopped:
        replace_once(text, "b = 2", "b = 3", "the worker script")

    assert "MiniStack changed" in str(stopped.value.code)
    assert "the worker script" in str(stopped.value.code)


def test_every_patch_applies_to_the_pinned_ministack_in_its_own_environment():
    python = environments.ensure(environments.MINISTACK, baton_home() / "venvs", print)

    result = subprocess.run([str(python), str(LAUNCHER), "--check"], capture_output=True, text=True,
                            timeout=120)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"all {len(PATCHES)} patches apply to MiniStack {pinned_version()}" in result.stdout


def test_a_changed_snippet_stops_naming_its_patch(fake_ministack):
    drifted = Patch(name="greeting-is-polite", stock="says hello", baton="says good day",
                    edits=(Edit(Target("fake_stock", "greet"), '"hi " + name', '"good day " + name'),))

    with pytest.raises(GuardError) as stopped:
        apply_patches((drifted,))

    assert "greeting-is-polite" in str(stopped.value.code)
    assert "fake_stock.greet" in str(stopped.value.code)
    assert fake_ministack.greet("ann") == "hello ann"


def test_a_patched_function_replaces_its_dispatch_table_entry_too(fake_ministack):
    polite = Patch(name="greeting-is-polite", stock="says hello", baton="says good day",
                   edits=(Edit(Target("fake_stock", "greet", ("HANDLERS", "greet")),
                               '"hello " + name', 'baton_salute() + name'),),
                   provides={"baton_salute": lambda: "good day "})

    apply_patches((polite,))

    assert fake_ministack.greet("ann") == "good day ann"
    assert fake_ministack.HANDLERS["greet"]("bob") == "good day bob"


def test_another_ministack_version_is_refused(fake_ministack, monkeypatch):
    monkeypatch.setitem(sys.modules, "ministack", types.SimpleNamespace(__version__="0.0.1"))

    with pytest.raises(GuardError) as stopped:
        apply_patches(())

    assert "installed version is 0.0.1" in str(stopped.value.code)


def test_the_description_names_every_patch_with_both_behaviours():
    text = describe()

    for patch in PATCHES:
        assert f"{patch.name}\n   stock: {patch.stock}\n   baton: {patch.baton}" in text
