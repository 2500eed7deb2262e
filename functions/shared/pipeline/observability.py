"""Logger, Tracer and Metrics, created once here and imported by every function.

Service name and log level come from the Powertools environment variables the template sets.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="Baton")
