"""Test doubles of the choreography engine: events as EventBridge delivers them, fake publishers."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from engines.events import EventMetadata, entry

REQUESTED_AT = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
BUS = "baton-test-bus"




def metadata(run_id: str = "run-1", url: str = "http://a.test/", attempts: int = 0) -> EventMetadata:
    return EventMetadata(run_id=run_id, url=url, attempts=attempts, requested_at=REQUESTED_AT)


def delivered(put_entry: dict[str, Any]) -> dict[str, Any]:
    """The event EventBridge hands a target for one PutEvents entry."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": put_entry["DetailType"],
        "source": put_entry["Source"],
        "account": "123456789012",
        "time": "2026-11-22T10:00:01Z",
        "region": "us-east-1",
        "resources": [],
        "detail": json.loads(put_entry["Detail"]),
    }


def event(detail_type: str, meta: EventMetadata, data: BaseModel | dict[str, Any]) -> dict[str, Any]:
    """A delivered event of ``detail_type``; ``data`` may be a raw (even malformed) dict."""
    if isinstance(data, BaseModel):
        return delivered(entry(detail_type, meta, data, BUS))
    raw = {"metadata": meta.model_dump(mode="json"), "data": data}
    return delivered({"DetailType": detail_type, "Source": "baton.pipeline",
                      "Detail": json.dumps(raw)})


@dataclass
class Published:
    detail_type: str
    metadata: EventMetadata
    data: BaseModel


@dataclass
class RecordingPublish:
    """Stands in for engines.events.publish: keeps what would have been published."""

    sent: list[Published] = field(default_factory=list)

    def __call__(self, detail_type: str, meta: EventMetadata, data: BaseModel) -> None:
        self.sent.append(Published(detail_type, meta, data))


@dataclass
class FakeEventsClient:
    """An EventBridge client whose put_events rejects the entries ``reject`` says, by call."""

    reject: list[set[int]] = field(default_factory=list)  # per call: indexes to reject
    calls: list[list[dict[str, Any]]] = field(default_factory=list)

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        assert len(Entries) <= 10, "PutEvents takes at most 10 entries"
        rejected = self.reject.pop(0) if self.reject else set()
        self.calls.append(Entries)
        results = [{"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"}
                    if index in rejected else {"EventId": str(uuid.uuid4())}
                    for index in range(len(Entries))]
        return {"FailedEntryCount": len(rejected), "Entries": results}
