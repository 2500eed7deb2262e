"""The transformer Lambda: raw HTML (by S3 reference) to clean text, metadata and content hash."""
