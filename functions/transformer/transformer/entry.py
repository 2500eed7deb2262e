"""The transformer function's entry point, for all three engines (``engines.choreography.adapt``).

A step request (the orchestrator's or Step Functions' synchronous invoke) goes to
``transformer.handler``; a PageScraped event (the choreography's rule) goes through the same handler
and becomes PageTransformed (or PageFailed).
"""

from engines.choreography import adapt
from transformer.handler import lambda_handler as transformer

lambda_handler = adapt("transformer", transformer)
