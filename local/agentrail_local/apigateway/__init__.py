"""Local API Gateway: each ``AWS::ApiGateway::RestApi`` of the deployed templates, served on ``127.0.0.1``.

The API is rebuilt from the template (:mod:`.model`), and each request goes
through API Gateway's steps (:mod:`.pipeline`): route match, size limit, stage
throttling, authentication (:mod:`.auth`: IAM SigV4, API keys, Cognito),
request validation, then the Lambda proxy integration with a REST (v1) event
(:mod:`.proxy`). API Gateway's own answers are in :mod:`.responses`; the HTTP
server is :mod:`.server`.
"""

__all__ = ["auth", "model", "pipeline", "proxy", "responses", "server"]
