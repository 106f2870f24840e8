"""AsgiAgent: an agent written as an ASGI app (FastAPI, Starlette) on the stack's REST API, through mangum.

The constructs never import the user's app: at synth a subprocess of this Python imports ``module:app`` with the code
folder first on ``sys.path`` (:func:`probe_app`). An app that does not import fails the synth with one sentence, and
a FastAPI app hands back its OpenAPI document, from which API Gateway's request models are generated.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any, Literal

from aws_cdk import Annotations
from aws_cdk import aws_apigateway as apigw
from constructs import Construct

from agentrail_constructs.api import AgentApi, AgentApiOptions
from agentrail_constructs.contract import contract
from agentrail_constructs.function import AgentFunction, AgentFunctionOptions
from agentrail_constructs.layers import AsgiLayer
from agentrail_constructs.request_models import json_schema
from agentrail_constructs.sources import handler_dir

#: The handler folder (``agentrail_handlers/asgi``); its module ``app`` may not be the user's module's name.
ASGI_HANDLER = "asgi"
_HANDLER_MODULE = "app"
_APP_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS")
#: Seconds the synth waits for the app to import.
PROBE_TIMEOUT_SECONDS = 120

# Runs in the child: the code folder first on sys.path, then the app imported, and its OpenAPI document when it
# offers one (FastAPI's ``app.openapi()``). Standard library only, besides what the app itself imports.
_PROBE = r"""
import importlib, json, sys, traceback
path, code, want_document = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
sys.path.insert(0, code)
module_name, _, attribute = path.partition(":")
try:
    found = importlib.import_module(module_name)
    for name in attribute.split("."):
        found = getattr(found, name)
except Exception as error:
    print(json.dumps({"error": f"{type(error).__name__}: {error}"}))
    raise SystemExit(0)
if not callable(found):
    print(json.dumps({"error": f"{attribute} is a {type(found).__name__}, not an ASGI app"}))
    raise SystemExit(0)
document = None
if want_document and callable(getattr(found, "openapi", None)):
    document = found.openapi()
print(json.dumps({"app": type(found).__name__, "openapi": document}, default=str))
"""


@dataclass(frozen=True)
class AppProbe:
    """What the synth learned of the app: its class name, and its OpenAPI document (None when it offers none)."""

    app_class: str
    openapi: dict[str, Any] | None


def _tree_stamp(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.py")):
        if "__pycache__" not in path.parts:
            stat = path.stat()
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()


def probe_app(app: str, code: Path, *, want_document: bool = True) -> AppProbe:
    """Import ``app`` in a subprocess of this Python, with ``code`` first on ``sys.path``; never in this process.

    Raises
    ------
    ValueError
        One sentence naming the app, the folder and the import's error, when it does not import.
    """
    return _probe(app, str(code.resolve()), want_document, _tree_stamp(code))


@cache
def _probe(app: str, code: str, want_document: bool, _stamp: str) -> AppProbe:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("AGENT_")}
    environment.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # an app may build AWS clients at import
    environment["POWERTOOLS_METRICS_NAMESPACE"] = environment.get("POWERTOOLS_METRICS_NAMESPACE", "Agentrail")
    try:
        result = subprocess.run(
            [sys.executable, "-c", _PROBE, app, code, "1" if want_document else "0"],
            capture_output=True,
            text=True,
            env=environment,
            cwd=code,
            timeout=PROBE_TIMEOUT_SECONDS,
            check=False,
        )
        answer = json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else None
        failure = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit code {result.returncode}"
    except subprocess.TimeoutExpired:
        answer, failure = None, f"it did not finish importing within {PROBE_TIMEOUT_SECONDS} seconds"
    except ValueError:
        answer, failure = None, "it printed something that is not JSON"
    if answer is None or "error" in answer:
        reason = answer["error"] if answer is not None else failure
        raise ValueError(f"AsgiAgent app={app!r} does not import from {code} with {sys.executable}: {reason}")
    return AppProbe(app_class=answer["app"], openapi=answer.get("openapi"))


def check_app_path(app: str, code: str | Path) -> Path:
    """The code folder, once ``app`` reads as ``module:attribute`` and the folder exists.

    Raises
    ------
    ValueError
        Naming the fix.
    """
    if not _APP_PATH.match(app):
        raise ValueError(f"AsgiAgent app={app!r} must be module:attribute, e.g. app='fastapi_agent.main:app'")
    if app.split(".")[0].split(":")[0] == _HANDLER_MODULE:
        raise ValueError(
            f"AsgiAgent app={app!r}: a top-level module named {_HANDLER_MODULE!r} is shadowed by the Lambda handler's "
            "own app.py; rename your module (e.g. main.py)"
        )
    folder = Path(code)
    if not folder.is_dir():
        raise ValueError(f"AsgiAgent code={str(folder)!r} is not a folder: point it at the folder your app's module is in")
    return folder


def _operation_name(operation: dict[str, Any], method: str, path: str) -> str:
    raw = str(operation.get("operationId") or f"{method}_{path}")
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", raw) if part)[:60] or "Operation"


@dataclass(frozen=True)
class ValidatedOperation:
    """One operation of the app's OpenAPI document whose JSON body API Gateway validates."""

    method: str
    path: str
    name: str
    schema: dict[str, Any]


def validated_operations(document: dict[str, Any]) -> tuple[list[ValidatedOperation], list[str]]:
    """The operations of ``document`` with a JSON body, each with its draft-04 schema (generated by the runtime's
    contract, as the runtime's own request models are), and a note for each operation left to the app."""
    components = (document.get("components") or {}).get("schemas") or {}
    found: list[ValidatedOperation] = []
    skipped: list[str] = []
    for path, operations in sorted((document.get("paths") or {}).items()):
        for method, operation in sorted(operations.items()):
            if method.upper() not in _METHODS or not isinstance(operation, dict):
                continue
            body = ((operation.get("requestBody") or {}).get("content") or {}).get("application/json")
            if not body or "schema" not in body:
                continue
            if path.strip("/").startswith("{"):
                skipped.append(f"{method.upper()} {path}: a path parameter first would be a sibling of /{{proxy+}}")
                continue
            try:
                schema = contract.draft4(body["schema"], components)
            except contract.UnsupportedSchema as error:
                skipped.append(f"{method.upper()} {path}: {error}")
                continue
            found.append(ValidatedOperation(method.upper(), path, _operation_name(operation, method, path), schema))
    return found, skipped


class AsgiAgent(Construct):
    """An agent written as an ASGI app (FastAPI, Starlette), served on a REST API through mangum.

    The function runs agentrail's ASGI handler (``agentrail_handlers.asgi``): at cold start it imports ``app`` from
    ``code`` (shipped as the agent code layer), wraps it with mangum and with the observability every handler has
    (Lambda context and correlation id on every log line, an X-Ray segment, metrics flushed), and answers with
    ``X-Correlation-Id``. The API sends ``ANY /`` and ``ANY /{proxy+}`` to it, authenticated by the API's auth,
    under its stage throttling, access logs and X-Ray.

    At synth a subprocess of this Python imports ``app`` (this process never does): a path that does not import
    fails the synth. With ``openapi`` the operations of the app's OpenAPI document that take a JSON body get a
    method of their own with a request model generated from the document, so API Gateway refuses a body that does
    not match its schema (400 ``invalid_request``) before the function runs; what the schema cannot say (a pydantic
    validator) still gets the app's own 422. Other methods of those paths, and the paths below them, reach the app
    (``ANY``, and ``{proxy+}`` under each unless a path parameter sits there).

    Parameters
    ----------
    app:
        The app, as ``module:attribute`` (``fastapi_agent.main:app``); the module may not be named ``app``.
    code:
        The folder ``app``'s module is in (shipped as the agent code layer, ``/opt/python``).
    function_options:
        Options of the AgentFunction (model, memory, timeout...): the app's agent reads them through the runtime's
        settings. ``agent_code`` must stay unset (``code`` is it). Default: ``AgentFunctionOptions()``.
    api_options:
        Options of the REST API. Default: ``AgentApiOptions()`` (IAM auth, v1 stage, 50 requests per second).
    existing_rest_api:
        Your REST API to add the routes to (see :class:`AgentApi`). Default: a new one.
    openapi:
        ``"app"``: the document the app gives (``app.openapi()``, FastAPI), read by the synth subprocess; a path: a
        JSON OpenAPI document of yours; None: no request validation at the gateway (the app validates alone). An
        HTTP API (``AgentApiOptions(kind="http")``) has no request validation. Default: ``"app"``.
    lifespan:
        mangum's lifespan mode (``AGENT_ASGI_LIFESPAN``). mangum 0.22 runs the app's startup and shutdown around
        every invocation, so build what the app needs at import instead. Default: ``off``.
    asgi_layer:
        Add the :class:`AsgiLayer` (mangum and FastAPI, locked with hashes). False when ``code`` vendors its own
        mangum and framework. Default: true.

    Attributes
    ----------
    agent_function, function, alias, api, rest_api, asgi_layer (None without), app_class (the app's type name, from
    the synth subprocess), validated_operations (the ``ValidatedOperation`` list), skipped_operations
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        app: str,
        code: str | Path,
        function_options: AgentFunctionOptions | None = None,
        api_options: AgentApiOptions | None = None,
        existing_rest_api: apigw.RestApi | None = None,
        openapi: Literal["app"] | str | Path | None = "app",
        lifespan: Literal["off", "auto", "on"] = "off",
        asgi_layer: bool = True,
    ) -> None:
        super().__init__(scope, construct_id)
        folder = check_app_path(app, code)
        if lifespan not in ("off", "auto", "on"):
            raise ValueError(f"AsgiAgent lifespan must be 'off', 'auto' or 'on', got {lifespan!r}")
        options = function_options or AgentFunctionOptions()
        if options.agent_code is not None:
            raise ValueError("AsgiAgent ships code= as the agent code layer: leave function_options.agent_code unset")
        document_file = None if openapi in (None, "app") else Path(str(openapi))
        if document_file is not None and not document_file.is_file():
            raise ValueError(f"AsgiAgent openapi={str(document_file)!r} is not a file: pass 'app', a JSON file, or None")
        probe = probe_app(app, folder, want_document=openapi == "app")
        self.app_class = probe.app_class
        document = json.loads(document_file.read_text(encoding="utf-8")) if document_file is not None else probe.openapi

        environment = {**options.environment, "AGENT_ASGI_APP": app}
        if lifespan != "off":
            environment["AGENT_ASGI_LIFESPAN"] = lifespan
        self.agent_function = AgentFunction(
            self,
            "Agent",
            handler_code=handler_dir(ASGI_HANDLER),
            options=replace(options, agent_code=str(folder), environment=environment),
        )
        self.function = self.agent_function.function
        self.alias = self.agent_function.alias
        self.asgi_layer: AsgiLayer | None = None
        if asgi_layer:
            self.asgi_layer = AsgiLayer.of(self, runtime=options.runtime, architecture=options.architecture)
            self.function.add_layers(self.asgi_layer)
        self.api = AgentApi(
            self, "Api", options=api_options, existing_rest_api=existing_rest_api, description="agentrail ASGI agent"
        )
        self.api.serve_with(self.agent_function)
        self.rest_api = self.api.rest_api
        self.validated_operations: list[ValidatedOperation] = []
        self.skipped_operations: list[str] = []
        if document is not None and self.api.http_api is None:
            self.validated_operations, self.skipped_operations = validated_operations(document)
        elif openapi == "app" and document is None:
            Annotations.of(self).add_info(f"{app} ({probe.app_class}) offers no OpenAPI document: no request validation")
        for note in self.skipped_operations:
            Annotations.of(self).add_warning_v2("agentrail:asgi-unvalidated", f"not validated at the gateway, {note}")
        self._build_routes()

    def _build_routes(self) -> None:
        self.api.add_function_route("/", "ANY", self.alias, operation_name="AppRoot")
        self.api.add_function_route("/{proxy+}", "ANY", self.alias, operation_name="AppProxy")
        created: dict[str, str] = {}  # resource path -> a name for its operations
        for operation in self.validated_operations:
            self.api.add_function_route(
                operation.path,
                operation.method,
                self.alias,
                request_schema=json_schema(operation.schema),
                operation_name=operation.name,
            )
            parts = operation.path.strip("/").split("/")
            for depth in range(1, len(parts) + 1):
                created.setdefault(
                    "/" + "/".join(parts[:depth]), "".join(re.sub(r"[^A-Za-z0-9]", "", p).capitalize() for p in parts[:depth])
                )
        # A validated path's resources (and each one above it) exist now, so API Gateway routes their paths there, not
        # to /{proxy+}: ANY sends their other methods on to the app, and a {proxy+} below each (unless a parameter
        # sits there) the paths under them.
        for resource, name in created.items():
            self.api.add_function_route(resource, "ANY", self.alias, operation_name=f"App{name}Any")
            if not any(other.startswith(f"{resource}/{{") for other in created):
                self.api.add_function_route(f"{resource}/{{proxy+}}", "ANY", self.alias, operation_name=f"App{name}Proxy")

    @property
    def url(self) -> str:
        return self.api.url


__all__ = ["ASGI_HANDLER", "AppProbe", "AsgiAgent", "ValidatedOperation", "check_app_path", "probe_app", "validated_operations"]
