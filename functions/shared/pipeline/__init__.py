"""The shared layer: contracts, errors and observability used by every pipeline function and engine."""
