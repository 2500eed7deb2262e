"""The launcher refuses to run a MiniStack whose guarded code differs from what it patches."""

import pytest

from baton.localcloud.launcher import GuardError, replace_once


def test_replaces_a_snippet_found_once():
    assert replace_once("a = 1\nb = 2\n", "b = 2", "b = 3", "demo") == "a = 1\nb = 3\n"


@pytest.mark.parametrize("text", ["a = 1\n", "b = 2\nb = 2\n"])
def test_missing_or_repeated_snippet_stops_with_a_message(text):
    with pytest.raises(GuardError) as stopped:
        replace_once(text, "b = 2", "b = 3", "the worker script")

    assert "MiniStack changed" in str(stopped.value.code)
    assert "the worker script" in str(stopped.value.code)
