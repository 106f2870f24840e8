"""The one way the runtime makes AWS clients, with one retry configuration, and the AWS things every layer shares.

:func:`client` (and :class:`LazyClient`, which calls it on first use) gives every client
``RETRIES`` (built with the first client): botocore's standard retry mode (jittered backoff, throttling detection,
``x-amz-retry-after``), 3 retries (4 attempts in all). A caller that needs more (Bedrock's read timeout) passes
its own ``Config``, merged over it.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from botocore.config import Config


@functools.cache
def _retries() -> Config:
    # botocore is imported when the first client is made: a cold start that makes none never pays for it (~70 ms).
    from botocore.config import Config

    return Config(retries={"mode": "standard", "max_attempts": 3})


def __getattr__(name: str) -> Any:
    # ``RETRIES``, the retry configuration of every client the runtime makes, is built on first read.
    if name == "RETRIES":
        return _retries()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: ``arn:PARTITION:sts::ACCOUNT:assumed-role/ROLE/SESSION``, as API Gateway reports a caller that assumed a role.
_ASSUMED_ROLE = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/(?P<session>.+)$"
)


def role_of_session(arn: str) -> str | None:
    """The IAM ARN of the role behind an assumed-role session ARN (``arn:aws:iam::ACCOUNT:role/ROLE``), else None.

    The session ARN carries the role's name but not its path, so neither does the result.
    """
    match = _ASSUMED_ROLE.match(arn)
    if match is None:
        return None
    return f"arn:{match['partition']}:iam::{match['account']}:role/{match['role']}"


def principal_matches(principal: str, patterns: Iterable[str]) -> bool:
    """Whether ``principal`` (as the API names callers: ``iam:<arn>``, ``cognito:<sub>``, ...) matches one of the fnmatch
    ``patterns``. A pattern naming a role (``iam:arn:aws:iam::…:role/Approver*``) admits that role's sessions too, since
    the API identifies IAM callers by session."""
    names = [principal]
    if principal.startswith("iam:") and (role := role_of_session(principal.removeprefix("iam:"))):
        names.append(f"iam:{role}")
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns for name in names)


def _merged(config: Config | Mapping[str, Any] | None) -> Config:
    retries = _retries()
    if config is None:
        return retries
    return retries.merge(config if not isinstance(config, Mapping) else type(retries)(**config))


def client(service: str, *, config: Config | Mapping[str, Any] | None = None, endpoint_url: str | None = None) -> Any:
    """A boto3 client of ``service`` with :data:`RETRIES`, and ``config`` (a ``Config`` or its keyword arguments)
    merged over it (its options win); at ``endpoint_url`` when given (the ``@connections`` API of a WebSocket stage
    has no default endpoint)."""
    # boto3 is imported on first use: a function whose invocation makes no client never loads it.
    import boto3

    merged = _merged(config)
    # boto3-stubs types one overload per literal service name; this function takes any name and returns Any.
    return boto3.client(service, config=merged, endpoint_url=endpoint_url)  # type: ignore[call-overload]


def resource(service: str, *, config: Config | Mapping[str, Any] | None = None) -> Any:
    """A boto3 resource of ``service``, configured as :func:`client` configures clients."""
    # Imported on first use, as in client().
    import boto3

    # As in client(): the stubs know literal service names only.
    return boto3.resource(service, config=_merged(config))  # type: ignore[call-overload]


class LazyClient:
    """A class attribute holding a boto3 client: ``sqs = LazyClient("sqs")``.

    The client is made by :func:`client` on first read. Assigning one (a moto-backed client
    in tests) injects it; assigning ``None`` keeps the default.
    """

    def __init__(self, service: str, *, config: Config | Mapping[str, Any] | None = None) -> None:
        self.service = service
        self.config = config

    def __set_name__(self, owner: type, name: str) -> None:
        self.attribute = f"_{name}_client"

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        made = instance.__dict__.get(self.attribute)
        if made is None:
            made = instance.__dict__[self.attribute] = client(self.service, config=self.config)
        return made

    def __set__(self, instance: Any, made: Any) -> None:
        instance.__dict__[self.attribute] = made


def query_index(client: Any, table_name: str, index: str, attribute: str, value: str) -> Iterator[dict[str, Any]]:
    """Every item (in the index's projection, low-level form) of ``table_name``'s ``index`` whose partition key
    ``attribute`` is the string ``value``, page after page (what erasure reads through its keys-only indexes)."""
    pages = client.get_paginator("query").paginate(
        TableName=table_name,
        IndexName=index,
        KeyConditionExpression="#key = :value",
        ExpressionAttributeNames={"#key": attribute},
        ExpressionAttributeValues={":value": {"S": value}},
    )
    for page in pages:
        yield from page.get("Items", [])


def delete_owned(client: Any, table_name: str, keys: Iterable[Mapping[str, Any]], *, owner_attribute: str, owner: str) -> int:
    """Delete each item of ``table_name`` whose key (low-level form, e.g. ``{"pk": {"S": ...}}``) is in ``keys`` and
    whose ``owner_attribute`` is ``owner`` (the keys an owner index listed); how many were deleted.

    Each delete is conditional on the owner: a key a stale index entry listed is never someone else's item, and one
    already gone counts zero, so a second erasure reports 0. Any other DynamoDB error is raised: an erasure must not
    report what it did not do.
    """
    deleted = 0
    for key in list(keys):
        try:  # the condition holds only on an item that exists: a delete that passes deleted one
            client.delete_item(
                TableName=table_name,
                Key=dict(key),
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": owner_attribute},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except client.exceptions.ConditionalCheckFailedException:
            continue  # gone already (the index lags the table), or never the owner's
        deleted += 1
    return deleted


#: BatchGetItem takes at most this many keys per call.
BATCH_GET_KEYS = 100
#: BatchGetItem calls again for the keys DynamoDB left unprocessed (throttled) at most this many times.
BATCH_GET_ROUNDS = 5


def batch_get(
    client: Any,
    table_name: str,
    key_attribute: str,
    keys: Sequence[str],
    *,
    sort_key: Mapping[str, Any] | None = None,
    consistent: bool = False,
) -> dict[str, dict[str, Any]]:
    """The items of ``table_name`` whose string partition key ``key_attribute`` is one of ``keys`` (and whose sort key
    is ``sort_key``, low-level form, when the table has one), by key (low-level form; BatchGetItem, 100 keys a call,
    calling again for unprocessed keys; strongly consistent reads when ``consistent``). A key still unprocessed after
    :data:`BATCH_GET_ROUNDS` calls is missing from the answer, like an item that does not exist."""
    items: dict[str, dict[str, Any]] = {}
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), BATCH_GET_KEYS):
        chunk = unique[start : start + BATCH_GET_KEYS]
        request: dict[str, Any] = {
            table_name: {"Keys": [{key_attribute: {"S": key}, **(sort_key or {})} for key in chunk], "ConsistentRead": consistent}
        }
        for _ in range(BATCH_GET_ROUNDS):
            response = client.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(table_name, []):
                items[item[key_attribute]["S"]] = item
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
    return items


class ToolSecretSettings(BaseSettings):
    """The secrets tools may read (part of :class:`~agentrail_runtime.config.RuntimeSettings`, which validates it at
    cold start; :func:`agentrail_runtime.agent.secrets.granted_tool_secrets` reads it once, without the rest)."""

    model_config = SettingsConfigDict(env_prefix="AGENT_", extra="ignore", frozen=True)

    #: The secrets the agent's tools may read with ``context.secret(name)``: name -> secret ARN
    #: (``AGENT_TOOL_SECRETS``, what ``AgentFunctionOptions(tool_secrets=...)`` writes).
    tool_secrets: dict[str, str] = Field(default_factory=dict)


def read_secret(name: str, *, max_age: int = 300) -> str:
    """A Secrets Manager secret's value, through Powertools parameters: cached per execution environment
    for ``max_age`` seconds, so a rotation is picked up without a cold start."""
    # Powertools parameters is loaded on first use: only functions that read a secret pay for it.
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(name, max_age=max_age)
    return value if isinstance(value, str) else value.decode()


class S3Payloads:
    """JSON payloads too large for a DynamoDB item, kept in S3 (bucket encryption applies); the item keeps the key."""

    client = LazyClient("s3")

    def __init__(self, bucket: str, *, client: Any = None) -> None:
        self.bucket = bucket
        self.client = client

    def put(self, key: str, payload: str) -> str:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=payload.encode(), ContentType="application/json")
        return key

    def get(self, key: str) -> str:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode()

    def delete_prefix(self, prefix: str) -> int:
        """Delete every payload under ``prefix``; the number deleted."""
        deleted = 0
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
                deleted += len(keys)
        return deleted


def token_claims(request_context: Mapping[str, Any]) -> Mapping[str, Any]:
    """The claims of a Cognito token: a REST API's Cognito authorizer (``authorizer.claims``) or an HTTP API's JWT
    authorizer (``authorizer.jwt.claims``)."""
    authorizer = request_context.get("authorizer") or {}
    return authorizer.get("claims") or (authorizer.get("jwt") or {}).get("claims") or {}


def principal_of(request_context: dict[str, Any], *, iam_identity: Literal["role", "session"] = "role") -> str | None:
    """The authenticated caller: Cognito ``sub``, IAM ARN, or API key id (in that order).

    REST (payload 1.0) and HTTP API (payload 2.0) callers get the same name: the token's ``sub`` from
    ``authorizer.claims`` or ``authorizer.jwt.claims``, the ARN from ``identity.userArn`` or ``authorizer.iam.userArn``.
    A caller that assumed a role is the role (``iam:arn:aws:iam::ACCOUNT:role/ROLE``): whoever may assume it
    chooses the session name, so the session is the identity only with ``iam_identity="session"``.
    """
    claims = token_claims(request_context)
    if claims.get("sub"):
        return f"cognito:{claims['sub']}"
    identity = request_context.get("identity") or {}
    user_arn = identity.get("userArn") or ((request_context.get("authorizer") or {}).get("iam") or {}).get("userArn")
    if user_arn:
        arn = str(user_arn)
        role = role_of_session(arn) if iam_identity == "role" else None
        return f"iam:{role or arn}"
    if identity.get("apiKeyId"):
        return f"apikey:{identity['apiKeyId']}"
    return None


__all__ = [
    "LazyClient",
    "S3Payloads",
    "ToolSecretSettings",
    "batch_get",
    "client",
    "principal_matches",
    "principal_of",
    "query_index",
    "read_secret",
    "resource",
    "role_of_session",
    "token_claims",
]
