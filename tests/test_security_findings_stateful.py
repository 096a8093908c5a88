"""Schemathesis's stateful phase (issue #21): sequences of calls that follow the OpenAPI links of the API's own
contract (app/core/openapi.add_links), from a draft it creates to its edit, submission and moderation, from a
comment to its replies, edit, endorsement and hiding, from a response to its judgement and commitments.

It runs against the rows tests/test_api_fuzz.py seeds, signed in as the same worker who holds every role; each
step must answer as the schema says (no 5xx, a documented status, content type and body).
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.core.transport import Response

from tests.conftest import Browser
from tests.test_api_fuzz import (
    CONTRACT,
    _real_ids_half_the_time,
    _send,
    connection,  # noqa: F401  (fixtures this module shares with the stateless run)
    csrf,  # noqa: F401
    seeded,  # noqa: F401
    signed_in,  # noqa: F401
)

pytestmark = pytest.mark.one_database("postgresql")

SCENARIOS = 25
STEPS = 6

CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {"deterministic": True, "database": "none"},
        # Links from the schema only: what a client reading the contract can follow, not what schemathesis guesses.
        "phases": {"stateful": {"enabled": True, "max-steps": STEPS, "inference": {"algorithms": []}}},
        "checks": {
            "enabled": False,
            "not_a_server_error": {"enabled": True},
            "status_code_conformance": {"enabled": True},
            "content_type_conformance": {"enabled": True},
            "response_schema_conformance": {"enabled": True},
        },
    }
)
schema = schemathesis.openapi.from_dict(CONTRACT, config=CONFIG)
schema.hook("flatmap_path_parameters")(_real_ids_half_the_time)  # a first step names rows that exist, too

# What creates the rows the links start from is given text the rules take, so that scenarios get past the
# first step: generated text is kept where it is fit (not blank, no control character), the category is a
# real one, and a commitment is due later. Refusals of unfit text are the stateless test's business.
CREATIONS = {
    "/api/v1/petitions": ("title", "ask", "background"),
    "/api/v1/petitions/{petition_id}/comments": ("body",),
    "/api/v1/petitions/{petition_id}/responses": ("summary", "details"),
}


def _fit(value: object, fallback: str) -> object:
    fit = isinstance(value, str) and value.strip() and value.isprintable() and len(value) <= 120
    return value if fit else fallback


@schema.hook("map_body")
def _bodies_the_rules_take(context: Any, body: Any) -> Any:
    operation = context.operation
    fields = CREATIONS.get(operation.path) if operation is not None and operation.method.upper() == "POST" else None
    if fields is None or not isinstance(body, dict):
        return body
    body = {**body, **{name: _fit(body.get(name), f"Generated {name}") for name in fields}}
    if operation.path == "/api/v1/petitions":
        body.update(category="privacy", deadline=None)
    if operation.path.endswith("/comments"):
        body.update(parent_id=None, quoted_id=None, anonymous=False)
    if operation.path.endswith("/responses"):
        body.update(status="accepted", commitments=[{"text": "Run the pilot", "owner": "Head of Support"}])
    return body


class Workflow(schema.as_state_machine()):  # type: ignore[misc]
    browser: Browser
    token: str

    def call(self, case: schemathesis.Case, **kwargs: Any) -> Any:
        # The test client's answer in schemathesis's own shape: the scenario records each step's request.
        return Response.from_any(_send(self.browser, case, self.token))

    def validate_response(
        self, response: Any, case: schemathesis.Case, additional_checks: Any = None, **kwargs: Any
    ) -> None:
        case.validate_response(response)


def test_the_contract_links_what_creates_a_row_to_what_acts_on_it() -> None:
    links = {
        (path, method, status): answer["links"]
        for path, operations in CONTRACT["paths"].items()
        for method, operation in operations.items()
        for status, answer in operation["responses"].items()
        if "links" in answer
    }
    created = links[("/api/v1/petitions", "post", "201")]
    assert created["PUT /api/v1/petitions/{petition_id}"]["parameters"] == {"petition_id": "$response.body#/id"}
    comment = links[("/api/v1/petitions/{petition_id}/comments", "post", "201")]
    assert comment["PATCH /api/v1/comments/{comment_id}"]["parameters"] == {"comment_id": "$response.body#/id"}
    response = links[("/api/v1/petitions/{petition_id}/responses", "post", "201")]
    assert response["PUT /api/v1/petitions/{petition_id}/responses/{response_id}/judgement"]["parameters"] == {
        "petition_id": "$request.path.petition_id",
        "response_id": "$response.body#/id",
    }
    assert response["POST /api/v1/commitments/{commitment_id}/updates"]["parameters"] == {
        "commitment_id": "$response.body#/commitments/0/id"
    }
    operation_ids = {
        operation["operationId"] for operations in CONTRACT["paths"].values() for operation in operations.values()
    }
    assert all(link["operationId"] in operation_ids for found in links.values() for link in found.values())


def test_the_api_answers_as_its_schema_says_along_its_links(signed_in: Browser, csrf: str) -> None:
    Workflow.browser, Workflow.token = signed_in, csrf
    Workflow.run(
        settings=settings(
            max_examples=SCENARIOS,
            stateful_step_count=STEPS,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[
                HealthCheck.function_scoped_fixture,
                HealthCheck.too_slow,
                HealthCheck.filter_too_much,
            ],
        )
    )
