"""The scraper function's entry point, for all three engines (``engines.choreography.adapt``).

A step request (the orchestrator's or Step Functions' synchronous invoke) goes to
``scraper.handler``; a PageRequested event (the choreography's rule) goes through the same handler
and becomes PageScraped (or PageFailed; a page answered 304 Not Modified ends its item with
PageNotModified instead).
"""

from engines.choreography import adapt
from scraper.handler import lambda_handler as scraper

lambda_handler = adapt("scraper", scraper)
