"""The one AWS account and Region that local mode emulates."""

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"
URL_SUFFIX = "amazonaws.com"

__all__ = ["ACCOUNT_ID", "PARTITION", "REGION", "URL_SUFFIX"]
