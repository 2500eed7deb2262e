"""EventBridge entry point of the moderator (choreography engine): PageTransformed in, PageModerated out."""

from engines.choreography import adapt
from moderator.handler import lambda_handler as moderator

lambda_handler = adapt("moderator", moderator)
