"""Errors are part of the contract: engines decide to retry or give up on the class name alone.

On Lambda the class name travels as the invoke response's ``errorType`` and is what Step Functions
``Retry``/``Catch`` match on, so these names are an interface: do not rename them.
"""


class PipelineError(Exception):
    """Base of the errors a pipeline step raises on purpose."""


class TransientError(PipelineError):
    """Retryable: 5xx, 429, timeouts, connection resets. The same call may succeed later."""


class PermanentError(PipelineError):
    """Final: 4xx, not HTML, too large, blocked address, redirect loop. Retrying cannot help."""
