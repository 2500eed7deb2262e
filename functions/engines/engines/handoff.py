"""Run requests travel by reference once they are large: an invocation's payload is capped.

Lambda takes at most 1 MB in an asynchronous invoke (6 MB synchronous; 256 KB before 2025), and a
run of 10,000 URLs with their previous validators is about 1.5 MB. So whoever invokes the orchestrator (the
CLI, the monitor, the orchestrator continuing itself) hands it ``payload(request)``: the request
itself while it is small, else a ``RunPointer`` to a copy in the data bucket. The orchestrator
reads either with ``request(event)``. One place decides, so every invoker keeps to the limit.

Every run's request is also kept there when it starts (``keep``), whatever its engine: a redrive
reads it back (``kept``) to know the run's URLs and their validators.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from pipeline.keys import run_request_key
from pipeline.models import Contract, RunRequest

# Under every payload limit a request may meet (256 KB is the smallest), with room to spare.
INLINE_LIMIT_BYTES = 200 * 1024


class RunPointer(Contract):
    """A run request kept in S3: what an invocation carries instead of a large RunRequest."""

    run_id: str = Field(min_length=1)
    request_key: str = Field(min_length=1)
    continuation: int = Field(default=0, ge=0)


class RequestStore:
    """Run requests in one S3 bucket, under ``runs/<run_id>/request.json``."""

    def __init__(self, bucket: str | None, client: Any) -> None:
        self.bucket = bucket
        self.client = client
        # Runs whose request this store wrote or read back: a large request is then handed on
        # by pointer without writing it again (10,000 URLs are ~1.5 MB a copy).
        self._stored: set[str] = set()

    def payload(self, request: RunRequest) -> bytes:
        """What to invoke the orchestrator with: the request, or a pointer to a stored copy."""
        body = request.model_dump_json().encode()
        if len(body) <= INLINE_LIMIT_BYTES:
            return body
        if not self.bucket:
            raise ValueError(f"run {request.run_id} is {len(body)} bytes, over the "
                             f"{INLINE_LIMIT_BYTES}-byte payload limit, and no bucket was given")
        key = (run_request_key(request.run_id) if request.run_id in self._stored
               else self.keep(request))
        pointer = RunPointer(run_id=request.run_id, request_key=key,
                             continuation=request.continuation)
        return pointer.model_dump_json().encode()

    def keep(self, request: RunRequest) -> str:
        """Store the run's request (what a redrive reads back); its key."""
        if not self.bucket:
            raise ValueError(f"no bucket to keep run {request.run_id}'s request in")
        key = run_request_key(request.run_id)
        # The same content for every continuation of the run: writing it again changes nothing.
        self.client.put_object(Bucket=self.bucket, Key=key, ContentType="application/json",
                               Body=request.model_copy(update={"continuation": 0})
                               .model_dump_json().encode())
        self._stored.add(request.run_id)
        return key

    def kept(self, run_id: str) -> RunRequest | None:
        """The request a run was started with, if it was kept."""
        if not self.bucket:
            return None
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=run_request_key(run_id))["Body"]
        except self.client.exceptions.NoSuchKey:
            return None
        return RunRequest.model_validate_json(body.read())

    def request(self, event: dict[str, Any]) -> RunRequest:
        """The run request an invocation's event is, or points to."""
        if "request_key" not in event:
            return RunRequest.model_validate(event)
        pointer = RunPointer.model_validate(event)
        if not self.bucket:
            raise ValueError(f"run {pointer.run_id} was handed over in S3, and no bucket was given")
        body = self.client.get_object(Bucket=self.bucket, Key=pointer.request_key)["Body"].read()
        stored = RunRequest.model_validate_json(body)
        if pointer.request_key == run_request_key(pointer.run_id):
            self._stored.add(pointer.run_id)
        return stored.model_copy(update={"continuation": pointer.continuation})
