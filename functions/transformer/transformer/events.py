"""EventBridge entry point of the transformer (choreography engine): PageScraped in, PageTransformed out."""

from engines.choreography import adapt
from transformer.handler import lambda_handler as transformer

lambda_handler = adapt("transformer", transformer)
