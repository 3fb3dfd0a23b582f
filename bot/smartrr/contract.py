"""Smartrr's OpenAPI document for the Vendor API, and validation against it with openapi-core.

The document (``openapi.json``, as Smartrr publishes it) is generated from
TypeScript, and `normalise` makes three changes before openapi-core reads it:

- An ``allOf`` of object parts becomes one object schema: the union of the parts'
  ``properties`` and ``required``, closed (``additionalProperties: false``) when any part
  was. Under JSON Schema a closed part refuses every property the other parts declare, so
  no real purchase state could validate. A property the parts declare differently must
  satisfy both (``allOf`` of the two). A property written ``{"$ref": X, "nullable": true}``
  is copied as X's schema plus ``nullable: true``: openapi-core ignores a ``$ref``'s
  siblings, and the merged purchase state must keep its nullable ``nextBillingDate``,
  ``pausedAt`` and ``cancelledAt``. Schemas that are not merged keep the strict reading,
  so ``IPurchaseStateActivatePut.nextBillingDate: null`` is refused.
- ``ISODateString`` gets a pattern: a full UTC timestamp with milliseconds and a ``Z``.
- ``servers`` becomes ``/``, so a call to any scheme and host validates (the Vendor API's
  paths start at the root, as in the document).

Everything else (what is required, what is closed, enums, types) is the document's, as
openapi-core reads it.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import Request
from openapi_core import Config, OpenAPI
from openapi_core.contrib.flask import FlaskOpenAPIRequest
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIResponse
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from openapi_core.templating.paths.finders import APICallPathFinder
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.validation.request.exceptions import SecurityValidationError
from openapi_schema_validator import OAS30Validator
from werkzeug.wrappers import Response

JSON = dict[str, Any]

#: ``YYYY-MM-DDTHH:mm:ss.sssZ``, as the document's ISODateString describes it.
ISO_DATE_PATTERN = (
    r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{3}Z$"
)
_SCHEMAS = "#/components/schemas/"


class ContractViolation(ValueError):
    """A request or response the document does not allow.

    ``status`` is what a server following the document answers such a request: 400 for a
    refused body or parameter, 401 without credentials, 404 or 405 for a path or method the
    document does not name.
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@cache
def raw_document() -> JSON:
    """The document as Smartrr publishes it."""
    text = resources.files("bot.smartrr").joinpath("openapi.json").read_text(encoding="utf-8")
    document: JSON = json.loads(text)
    return document


@cache
def document() -> JSON:
    """The normalised document (see the module docstring); do not modify it."""
    return normalise(raw_document())


@cache
def _openapi() -> OpenAPI:
    # The document is Smartrr's own: checking it against the OpenAPI meta-schema costs
    # seconds and would only report what the normalisation is there to work around.
    return OpenAPI.from_dict(document(), config=Config(spec_validator_cls=None))


def normalise(raw: JSON) -> JSON:
    """A copy of ``raw`` with its allOf objects merged, ISODateString checkable and any server."""
    doc = copy.deepcopy(raw)
    schemas: dict[str, JSON] = doc["components"]["schemas"]
    schemas["ISODateString"] = {**schemas["ISODateString"], "pattern": ISO_DATE_PATTERN}
    merger = _Merger(schemas)
    doc["components"]["schemas"] = {name: merger.named(name) for name in schemas}
    doc["paths"] = merger.walk(doc["paths"])
    doc["servers"] = [{"url": "/"}]
    return doc


class _Merger:
    """Merges allOf objects; each named schema once, so recursive documents stay finite."""

    def __init__(self, schemas: dict[str, JSON]) -> None:
        self.schemas = schemas
        self.done: dict[str, JSON] = {}
        self.busy: set[str] = set()

    def named(self, name: str) -> JSON:
        if name not in self.done:
            if name in self.busy:
                raise ValueError(f"schema {name} is an allOf of itself")
            self.busy.add(name)
            self.done[name] = self.walk(self.schemas[name])
            self.busy.discard(name)
        return self.done[name]

    def walk(self, node: Any) -> Any:
        """``node`` with every mergeable allOf inside it merged."""
        if isinstance(node, list):
            return [self.walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        walked = {key: self.walk(value) for key, value in node.items()}
        return self.merge(walked) if "allOf" in walked else walked

    def target(self, schema: JSON) -> JSON:
        """``schema``, or what its ``$ref`` chain points to (merged)."""
        while "$ref" in schema:
            schema = self.named(schema["$ref"].removeprefix(_SCHEMAS))
        return schema

    def merge(self, schema: JSON) -> JSON:
        parts = [self.target(part) for part in schema["allOf"]]
        if not all(part.get("type") == "object" or "properties" in part for part in parts):
            return schema  # e.g. two string schemas a property must both satisfy
        properties: JSON = {}
        required: list[str] = []
        for part in parts:
            for name, prop in part.get("properties", {}).items():
                prop = self.nullable(prop)
                known = properties.get(name)
                properties[name] = prop if known in (None, prop) else {"allOf": [known, prop]}
            required += [name for name in part.get("required", []) if name not in required]
        merged = {key: value for key, value in schema.items() if key != "allOf"}
        merged.update(type="object", properties=properties)
        if required:
            merged["required"] = required
        if any(part.get("additionalProperties") is False for part in parts):
            merged["additionalProperties"] = False
        return merged

    def nullable(self, prop: JSON) -> JSON:
        if "$ref" in prop and prop.get("nullable") is True:
            siblings = {key: value for key, value in prop.items() if key != "$ref"}
            return {**self.target(prop), **siblings}
        return prop


def validate_request(prepared: requests.PreparedRequest) -> None:
    """Raise `ContractViolation` unless the document allows this request."""
    _validate(RequestsOpenAPIRequest(prepared), prepared.method or "", prepared.url or "")


def validate_flask_request(request: Request) -> None:
    """Raise `ContractViolation` unless the document allows this request (a server's view)."""
    _validate(FlaskOpenAPIRequest(request), request.method, request.path)


def _validate(wrapped: Any, method: str, url: str) -> None:
    try:
        _openapi().validate_request(wrapped)
    except (PathNotFound, OperationNotFound) as exc:
        status = 404 if isinstance(exc, PathNotFound) else 405
        raise ContractViolation(f"{method} {_path(url)}: not in the document", status) from None
    except SecurityValidationError as exc:
        raise ContractViolation(f"{method} {_path(url)}: {_describe(exc)}", 401) from None
    except Exception as exc:  # openapi-core's validation errors have no common base
        raise ContractViolation(f"{method} {_path(url)}: {_describe(exc)}") from None


def validate_response(method: str, url: str, status: int, body: Any) -> None:
    """Raise `ContractViolation` unless the document allows ``body`` as this call's answer.

    ``url`` is a URL or a path. An error the document does not list (for this operation, or
    for a path it does not name) must carry the document's ``ErrorResponse``; an undeclared
    success is a violation.
    """
    request = requests.Request(method, _absolute(url)).prepare()
    data = b"" if body is None else json.dumps(body).encode()
    response = Response(data, status=status, mimetype="application/json")
    _validate_answer(RequestsOpenAPIRequest(request), WerkzeugOpenAPIResponse(response), body)


def validate_http_response(response: requests.Response) -> None:
    """`validate_response` for an answer received over HTTP (tests of the sandbox)."""
    request = RequestsOpenAPIRequest(response.request)
    body = response.json() if response.content else None
    _validate_answer(request, RequestsOpenAPIResponse(response), body)


def _validate_answer(request: Any, response: Any, body: Any) -> None:
    what = f"{request.method.upper()} {request.path} answered {response.status_code}"
    try:
        _openapi().validate_response(request, response)
    except (ResponseNotFound, PathNotFound, OperationNotFound):
        if response.status_code < 400:
            raise ContractViolation(f"{what}: the document lists no such answer") from None
        errors = sorted(
            OAS30Validator(document()["components"]["schemas"]["ErrorResponse"]).iter_errors(body),
            key=str,
        )
        if errors:
            raise ContractViolation(f"{what}: {_messages(errors)}") from None
    except Exception as exc:
        raise ContractViolation(f"{what}: {_describe(exc)}") from None


def request_schema(method: str, path_template: str) -> JSON:
    """The normalised JSON schema of this operation's JSON body; LookupError if it has none."""
    operation = document()["paths"][path_template][method.lower()]
    try:
        schema: JSON = operation["requestBody"]["content"]["application/json"]["schema"]
    except KeyError:
        raise LookupError(f"{method.upper()} {path_template} takes no JSON body") from None
    return _resolve(schema)


def path_template(method: str, url: str) -> str:
    """The document's path for a call, e.g. ``/vendor/purchase-state/{shopifySubscriptionId}``."""
    finder = APICallPathFinder(_openapi().spec)
    try:
        found = finder.find(method.lower(), _absolute(url))
    except (PathNotFound, OperationNotFound):
        raise ContractViolation(f"{method} {_path(url)}: not in the document", 404) from None
    pattern: str = found.path_result.pattern
    return pattern


def unknown_keys(method: str, url: str, body: Any) -> list[str]:
    """Keys in ``body``, at any depth (dotted), that the request schema does not name.

    The document leaves some bodies open (a skip's), so openapi-core accepts keys that the
    server ignores; a client that sends them is guessing.
    """
    return _unknown(request_schema(method, path_template(method, url)), body, "")


def _unknown(schema: JSON, value: Any, where: str) -> list[str]:
    schema = _resolve(schema)
    if isinstance(value, list) and "items" in schema:
        return [
            key
            for index, item in enumerate(value)
            for key in _unknown(schema["items"], item, f"{where}[{index}]")
        ]
    if not isinstance(value, dict) or "properties" not in schema:
        return []
    found = []
    for key, item in value.items():
        path = f"{where}.{key}" if where else key
        if key in schema["properties"]:
            found += _unknown(schema["properties"][key], item, path)
        else:
            found.append(path)
    return found


def _resolve(schema: JSON) -> JSON:
    schemas = document()["components"]["schemas"]
    while "$ref" in schema:
        schema = schemas[schema["$ref"].removeprefix(_SCHEMAS)]
    return schema


def _absolute(url: str) -> str:
    return url if "://" in url else f"http://smartrr.invalid{url}"


def _path(url: str) -> str:
    return urlsplit(url).path or url


def _describe(exc: BaseException) -> str:
    """openapi-core's kind of error, with the schema errors behind it."""
    errors: list[Any] = []
    cause: BaseException | None = exc
    while cause is not None and not errors:
        errors = list(getattr(cause, "schema_errors", None) or [])
        cause = cause.__cause__
    return f"{type(exc).__name__}: {_messages(errors)}" if errors else str(exc)


def _messages(errors: list[Any]) -> str:
    return "; ".join(
        f"{'.'.join(map(str, error.absolute_path)) or 'body'}: {_message(error)}"
        for error in errors
    )


def _message(error: Any) -> str:
    if error.validator == "pattern" and error.validator_value == ISO_DATE_PATTERN:
        return f"{error.instance!r} is not an ISODateString (YYYY-MM-DDTHH:mm:ss.sssZ)"
    return str(error.message)
