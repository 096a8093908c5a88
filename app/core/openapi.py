"""The API's contract (/openapi.json) names every answer a route can give, errors included.

FastAPI documents a route's success and a 422 in a shape of its own. Our errors have one shape (`ErrorBody`),
and most of them follow from what a route declares in the route table: a sign-in or a role (401, 403), an id
in its path (404), a body (400 when it cannot be parsed, 413 when too large), a state change (403 without the
CSRF header), the database (503). Those are added here, from the route table, so that a new route is documented
like the others; the errors a route's own rules give (409, 410, 429...) are named on the route with `errors()`.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI

from app.core.access import Access, declared_access, route_table
from app.core.errors import ErrorBody
from app.core.web import SAFE_METHODS, is_cookieless

SIGNED_IN = {
    Access.account,
    Access.worker,
    Access.organizer,
    Access.responder,
    Access.pulse,
    Access.moderator,
    Access.admin,
}
WITH_ROLE = SIGNED_IN - {Access.account}
ERROR_REF = "#/components/schemas/ErrorBody"
FASTAPI_422 = "#/components/schemas/HTTPValidationError"
_CONVERTER = re.compile(r":\w+}")


def install(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_errors(generate(), app)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def document_errors(contract: dict[str, Any], app: FastAPI) -> None:
    table, _others = route_table(app)
    # The contract names a path parameter without its converter ({tile_path}, served as {tile_path:path}).
    routes = {(method, _CONVERTER.sub("}", path)): route for (method, path), route in table.items()}
    for path, operations in contract.get("paths", {}).items():
        for method, operation in operations.items():
            route = routes.get((method.upper(), path))
            if route is None or not path.startswith("/api/"):
                continue
            responses = operation.setdefault("responses", {})
            implied = _implied_errors(method.upper(), path, operation, declared_access(route))
            for status, description in sorted(implied.items()):
                # FastAPI's own 422 is replaced: the error handler answers in the one error shape.
                responses[str(status)] = {
                    "description": description,
                    "content": {"application/json": {"schema": {"$ref": ERROR_REF}}},
                }
    schemas = contract.setdefault("components", {}).setdefault("schemas", {})
    add_links(contract)
    shape = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(shape.pop("$defs", {}))
    schemas["ErrorBody"] = shape
    if FASTAPI_422 not in repr(contract.get("paths")):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)


def _implied_errors(method: str, path: str, operation: dict[str, Any], access: set[Access]) -> dict[int, str]:
    implied = {503: "The database cannot be reached, or is busy: try again after Retry-After seconds."}
    if "requestBody" in operation:
        implied[400] = "The body could not be read (not JSON, or not UTF-8)."
        implied[413] = "The body is larger than the server accepts."
    if "requestBody" in operation or operation.get("parameters"):
        implied[422] = "Some of what was sent is missing or not valid: `fields` says what."
    refusals = []
    if access & WITH_ROLE:
        refusals.append("this account may not do this (a role, an organizer or a confirmed address is needed)")
    if method not in SAFE_METHODS and not is_cookieless(path):
        refusals.append("the X-CSRF-Token header is missing or does not match this browser's CSRF cookie")
    if refusals:
        implied[403] = "Refused: " + "; or ".join(refusals) + "."
    if access & SIGNED_IN:
        implied[401] = "Sign in first."
    if "{" in path:
        implied[404] = "Nothing with that id, or nothing this account may see."
    return implied


# The model an answer returns, and the path parameter its `id` fills: what the OpenAPI links below follow.
ID_PARAMETERS = {
    "PetitionRead": "petition_id",
    "CommentRead": "comment_id",
    "ResponseRead": "response_id",
    "CommitmentRead": "commitment_id",
    "AccountRead": "user_id",
}
# Ids an answer holds besides its own: a response its first commitment.
NESTED_IDS = {("ResponseRead", "commitment_id"): "/commitments/0/id"}
_PARAMETER = re.compile(r"\{(\w+)\}")


def add_links(contract: dict[str, Any]) -> None:
    """OpenAPI links from what creates or reads a row to what acts on it (a new draft to its edit, submission and
    reading; a new comment to its replies, edit, endorsement and moderation): a client, and schemathesis's
    stateful phase, can follow them instead of guessing ids. Each link fills every path parameter of its target,
    from the answer or from the request's own path; a target it cannot fill is not linked."""
    operations = [
        (path, method, operation)
        for path, methods in contract.get("paths", {}).items()
        if path.startswith("/api/")
        for method, operation in methods.items()
    ]
    for source_path, method, operation in operations:
        # What creates a row (201), or names the caller's own (GET /api/v1/me): not every answer that holds
        # an id, or each petition's forty operations would link to one another.
        for status, answer in operation.get("responses", {}).items():
            reference = answer.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
            model = reference.rsplit("/", 1)[-1]
            creates = method == "post" and status == "201"
            names_own = method == "get" and status == "200" and "{" not in source_path
            if model not in ID_PARAMETERS or not (creates or names_own):
                continue
            if "{" + ID_PARAMETERS[model] + "}" in source_path:  # the row the path names already: nothing new
                continue
            links = {}
            for target_path, target_method, target in operations:
                needed = _PARAMETER.findall(target_path)
                if not needed or target is operation or "operationId" not in target:
                    continue
                parameters = {}
                for name in needed:
                    if name == ID_PARAMETERS[model]:
                        parameters[name] = "$response.body#/id"
                    elif (model, name) in NESTED_IDS:
                        parameters[name] = "$response.body#" + NESTED_IDS[(model, name)]
                    elif "{" + name + "}" in source_path:
                        parameters[name] = f"$request.path.{name}"
                from_answer = any(value.startswith("$response") for value in parameters.values())
                if len(parameters) == len(needed) and from_answer:
                    links[f"{target_method.upper()} {target_path}"] = {
                        "operationId": target["operationId"],
                        "parameters": parameters,
                    }
            if links:
                answer["links"] = links
