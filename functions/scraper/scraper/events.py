"""EventBridge entry point of the scraper (choreography engine): PageRequested in, PageScraped out.

A page answered 304 Not Modified ends its item with PageNotModified instead.
"""

from engines.choreography import adapt
from scraper.handler import lambda_handler as scraper

lambda_handler = adapt("scraper", scraper)
