"""What a runner creates in moto before it imports a handler: tables keyed by one string, and queues.

Imported by the runner scripts beside it (their folder is ``sys.path[0]``).
"""

__all__ = ["create_queue", "create_tables", "start_moto"]


def start_moto(calls):
    """Start moto for the rest of the process, with a fresh default boto3 session whose calls ``calls`` (an
    ``aws_calls.AwsCalls``, or one of its kind) counts and times; returns the mock, to ``stop()`` at the end."""
    import boto3
    import moto

    mock = moto.mock_aws()
    mock.start()
    boto3.setup_default_session()
    calls.register(boto3.DEFAULT_SESSION.events)
    return mock


def create_tables(dynamodb, keys) -> None:
    """One on-demand table per ``{name: partition key}``, the key a string (the task and idempotency tables' schema)."""
    for name, key in keys.items():
        dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )


def create_queue(sqs, name):
    """A queue with a visibility timeout of 300 s; returns its URL and ARN."""
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
