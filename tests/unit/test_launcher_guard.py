"""The launcher refuses to run a MiniStack whose guarded code differs from what it patches."""

import subprocess
import sys
import types

import pytest

from baton.localcloud import LAUNCHER, baton_home, environments
from baton.localcloud.launcher import (
    DATA_LIMIT_EXCEEDED,
    EVENTS_REQUEST_LIMIT,
    LAMBDA_ASYNC_REQUEST_LIMIT,
    LAMBDA_SYNC_REQUEST_LIMIT,
    PATCHES,
    STATES_DATA_LIMIT,
    Edit,
    GuardError,
    Patch,
    Target,
    apply_patches,
    check_state_data,
    describe,
    pinned_version,
    put_events_entry_size,
    refuse_large_execution_input,
    refuse_large_invoke,
    refuse_large_put_events,
    replace_once,
    state_data_size,
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


def test_a_patched_function_imported_by_name_elsewhere_is_replaced_there_too(fake_ministack,
                                                                              tmp_path):
    (tmp_path / "fake_caller.py").write_text("from fake_stock import greet\n")
    import fake_caller

    polite = Patch(name="greeting-is-polite", stock="says hello", baton="says good day",
                   edits=(Edit(Target("fake_stock", "greet"), '"hello " + name',
                               '"good day " + name'),))
    try:
        apply_patches((polite,))

        assert fake_caller.greet("ann") == "good day ann"
    finally:
        del sys.modules["fake_caller"]


def test_another_ministack_version_is_refused(fake_ministack, monkeypatch):
    monkeypatch.setitem(sys.modules, "ministack", types.SimpleNamespace(__version__="0.0.1"))

    with pytest.raises(GuardError) as stopped:
        apply_patches(())

    assert "installed version is 0.0.1" in str(stopped.value.code)


def test_the_description_names_every_patch_with_both_behaviours():
    text = describe()

    for patch in PATCHES:
        assert f"{patch.name}\n   stock: {patch.stock}\n   baton: {patch.baton}" in text


# -- payload limits -------------------------------------------------------------------------------


class FakeExecutionError(Exception):
    def __init__(self, error: str, cause: str) -> None:
        super().__init__(f"{error}: {cause}")
        self.error, self.cause = error, cause


@pytest.fixture
def fake_services(monkeypatch):
    """MiniStack's error response and Step Functions error, as the limit checks import them."""
    def error_response_json(code, message, status):
        return status, {"x-amzn-errortype": code}, message.encode()

    monkeypatch.setitem(sys.modules, "ministack.core.responses",
                        types.SimpleNamespace(error_response_json=error_response_json))
    monkeypatch.setitem(sys.modules, "ministack.services.stepfunctions",
                        types.SimpleNamespace(_ExecutionError=FakeExecutionError))


def refused(response: tuple[int, dict[str, str], bytes] | None) -> tuple[int, dict[str, str], bytes]:
    assert response is not None, "the request was not refused"
    return response


def padded(size: int) -> bytes:
    return b'{"pad":"' + b"x" * (size - len(b'{"pad":""}')) + b'"}'


@pytest.mark.parametrize(("headers", "limit"), [
    ({}, LAMBDA_SYNC_REQUEST_LIMIT),
    ({"X-Amz-Invocation-Type": "RequestResponse"}, LAMBDA_SYNC_REQUEST_LIMIT),
    ({"x-amz-invocation-type": "Event"}, LAMBDA_ASYNC_REQUEST_LIMIT),
])
def test_invoke_body_over_its_invocation_types_limit_is_refused(fake_services, headers, limit):
    assert refuse_large_invoke(padded(limit), headers) is None

    status, response_headers, message = refused(refuse_large_invoke(padded(limit + 1), headers))

    assert (status, response_headers["x-amzn-errortype"]) == (413, "RequestEntityTooLargeException")
    assert str(limit).encode() in message


def test_execution_input_is_measured_in_utf8_bytes(fake_services):
    at_limit = "é" * (STATES_DATA_LIMIT // 2)  # two bytes each

    assert refuse_large_execution_input(at_limit) is None
    status, headers, message = refused(refuse_large_execution_input(at_limit + "x"))
    assert (status, headers["x-amzn-errortype"]) == (400, "ValidationException")
    assert b"Value at 'input' failed to satisfy constraint" in message


def test_state_data_is_its_compact_json_in_utf8_bytes():
    assert state_data_size({"a": [1, 2], "b": "é"}) == len('{"a":[1,2],"b":"é"}'.encode())


def test_state_data_over_256_kib_fails_with_data_limit_exceeded(fake_services):
    check_state_data({"pad": "x" * (STATES_DATA_LIMIT - len('{"pad":""}'))}, "Fetch", "output")

    with pytest.raises(FakeExecutionError) as failed:
        check_state_data({"pad": "x" * (STATES_DATA_LIMIT + 1 - len('{"pad":""}'))}, "Fetch", "output")

    assert failed.value.error == DATA_LIMIT_EXCEEDED == "States.DataLimitExceeded"
    assert "'Fetch'" in failed.value.cause


def test_put_events_entry_size_is_awss_calculation():
    entry = {"Source": "s", "DetailType": "dé", "Detail": '{"a":1}', "Resources": ["r1", "r2"],
             "Time": 1_700_000_000, "EventBusName": "not counted"}

    assert put_events_entry_size(entry) == 14 + 1 + 3 + 7 + 2 + 2


def test_put_events_over_the_limit_in_total_is_refused_whole(fake_services):
    def entry(size: int) -> dict:
        return {"Source": "s", "DetailType": "d", "Detail": "x" * (size - 2)}

    assert refuse_large_put_events([entry(EVENTS_REQUEST_LIMIT)]) is None
    status, headers, message = refused(
        refuse_large_put_events([entry(EVENTS_REQUEST_LIMIT // 2)] * 2 + [entry(3)]))

    assert (status, headers["x-amzn-errortype"]) == (400, "ValidationException")
    assert message == b"Total size of the entries in the request is over the limit."
