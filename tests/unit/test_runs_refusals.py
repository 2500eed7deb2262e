"""The runs table makes a call DynamoDB refused again (a throttle, a conflicting transaction)
instead of failing a run's bookkeeping; any other error is raised at once."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from engines.runs import REFUSED_TRIES, RunsTable


def refusal(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "UpdateItem")


class FlakyClient:
    """Refuses the first calls with the given errors, then answers."""

    def __init__(self, *errors: ClientError) -> None:
        self.errors = list(errors)
        self.calls = 0

    def get_item(self, **request: Any) -> dict[str, Any]:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return {"Item": {"pk": {"S": "RUN#r"}, "sk": {"S": "META"}, "engine": {"S": "x"}}}


@pytest.mark.parametrize("code", ["TransactionConflictException",
                                  "ProvisionedThroughputExceededException"])
def test_a_refused_call_is_made_again(code):
    client, waits = FlakyClient(refusal(code), refusal(code)), list[float]()
    runs = RunsTable("runs", client, sleep=waits.append)

    assert runs.meta("r") == {"pk": "RUN#r", "sk": "META", "engine": "x"}
    assert client.calls == 3 and len(waits) == 2


def test_refusals_beyond_the_tries_and_other_errors_are_raised():
    endless = FlakyClient(*[refusal("TransactionConflictException")] * (REFUSED_TRIES + 1))
    with pytest.raises(ClientError, match="TransactionConflictException"):
        RunsTable("runs", endless, sleep=lambda _: None).meta("r")
    assert endless.calls == REFUSED_TRIES

    denied = FlakyClient(refusal("AccessDeniedException"))
    with pytest.raises(ClientError, match="AccessDenied"):
        RunsTable("runs", denied, sleep=lambda _: None).meta("r")
    assert denied.calls == 1
