"""The scraper Lambda: fetch one URL safely and keep its raw body in S3."""
