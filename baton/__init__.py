"""baton: run a serverless pipeline on an embedded local cloud, LocalStack or AWS."""
