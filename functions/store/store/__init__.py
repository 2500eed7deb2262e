"""The store Lambda: keep each check's clean text in S3 and its record in DynamoDB."""
