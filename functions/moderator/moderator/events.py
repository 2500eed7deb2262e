"""EventBridge entry point of the moderator (choreography engine): PageTransformed in, PageModerated out."""

from moderator.handler import lambda_handler as moderator
from pipeline.choreography import adapt

lambda_handler = adapt("moderator", moderator)
