"""The store function's entry point, for all three engines (``engines.choreography.adapt``).

A step request (the orchestrator's or Step Functions' synchronous invoke) goes to
``store.handler``; a PageModerated event (the choreography's rule) goes through the same handler
and becomes PageStored (or PageFailed).
"""

from engines.choreography import adapt
from store.handler import lambda_handler as store

lambda_handler = adapt("store", store)
