"""The moderator function's entry point, for all three engines (``engines.choreography.adapt``).

A step request (the orchestrator's or Step Functions' synchronous invoke) goes to
``moderator.handler``; a PageTransformed event (the choreography's rule) goes through the same handler
and becomes PageModerated (or PageFailed).
"""

from engines.choreography import adapt
from moderator.handler import lambda_handler as moderator

lambda_handler = adapt("moderator", moderator)
