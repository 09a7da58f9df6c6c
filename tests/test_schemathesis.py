"""Every operation of the app's OpenAPI document, driven by schemathesis as anonymous, bidder, agency, centre,
expert and supervisor: requests generated from the document (valid ones and ones that break it), sent
in-process to the same app the `api` fixture builds, on every database backend. No answer may be a server
error, and each answer's status, media type and body must be what the document states for the operation.

Generation is Hypothesis's, derandomized (the same cases every run) and bounded per operation and role.
Hypothesis runs on a worker thread; each request it generates is sent on the test's own event loop, where
the database pool lives, and the thread waits for the answer.
"""

from __future__ import annotations

import asyncio
import copy
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.helpers import Actor, Api
from tests.openapi_check import Mismatch, document_of

ROLES = ("anonymous", "bidder", "agency", "centre", "expert", "supervisor")
# Cases per operation, role and generation mode: 168 operations × 6 roles × 2 modes × this.
EXAMPLES = 1
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
STREAMS = re.compile(r"/events$")
BASE_URL = "http://testserver"


@pytest.fixture
async def actors(api: Api) -> dict[str, Actor | None]:
    found: dict[str, Actor | None] = {"anonymous": None}
    for role in ROLES[1:]:
        if role == "centre":
            found[role] = await api.bootstrap_centre()
        elif role == "expert":
            found[role] = await api.expert()
        else:
            found[role] = await api.organisation(role)
    return found


def _request(case: Case[Any], actor: Actor | None) -> dict[str, Any]:
    """The case as keyword arguments of `httpx.AsyncClient.request`, signed in as `actor`."""
    if STREAMS.search(case.operation.path):
        case.query = {**(case.query or {}), "follow": "false"}  # what is recorded, then the end
    sent = case.as_transport_kwargs(base_url=BASE_URL, headers=actor.headers if actor else None)
    request: dict[str, Any] = {
        "method": sent["method"],
        "url": sent["url"],
        "headers": sent.get("headers") or {},
        "params": {k: v for k, v in (sent.get("params") or {}).items() if v is not None},
    }
    if sent.get("cookies"):
        request["cookies"] = sent["cookies"]
    if "json" in sent:
        request["json"] = sent["json"]
    data = sent.get("data")
    if isinstance(data, str | bytes):
        request["content"] = data
    elif data is not None:
        request["data"] = data
    if sent.get("files"):
        request["files"] = sent["files"]
    return request


SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def _run(
    schema: Any,
    actors: dict[str, Actor | None],
    known: dict[str, str],
    send: Callable[[dict[str, Any]], httpx.Response | None],
) -> tuple[list[str], int]:
    """Generate and send every operation's cases on this (worker) thread; the failures found and the count
    of requests sent. Valid cases name the `known` records in their paths (a published tender, the
    caller's organisation), so they reach past the lookup; invalid ones name whatever they generate."""
    failures: dict[tuple[str, tuple[str, ...]], str] = {}
    sent = 0

    def walk(operation: Any, mode: GenerationMode, role: str) -> None:
        actor = actors[role]
        ours = {**known, "organisation_id": actor.organisation_id} if actor else known
        path = {name: value for name, value in ours.items() if f"{{{name}}}" in operation.path}

        cases = operation.as_strategy(
            generation_mode=mode, path_parameters=path if mode.is_positive else None
        )

        @SETTINGS
        @given(case=cases)
        def one(case: Case[Any]) -> None:
            nonlocal sent
            request = _request(case, actor)
            response = send(request)
            if response is None:
                return  # a request no HTTP client would send (a header or URL it refuses)
            sent += 1
            try:
                case.validate_response(response, checks=CHECKS, headers=request["headers"])
            except FailureGroup as group:
                kinds = tuple(sorted(failure.title for failure in group.exceptions))
                failures.setdefault(
                    (operation.label, kinds), f"{operation.label} as {role} ({mode}): {group}"
                )

        try:
            one()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE, operation.label  # nothing in it can be made invalid

    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for role in ROLES:
                walk(operation, mode, role)
    return list(failures.values()), sent


async def test_every_operation_answers_as_documented_under_generated_requests(
    api: Api, actors: dict[str, Actor | None]
) -> None:
    app = api.client._transport.app  # type: ignore[attr-defined]
    schema = schemathesis.openapi.from_dict(copy.deepcopy(dict(document_of(app).document)))
    agency = actors["agency"]
    assert agency is not None
    tender = await api.published(agency)
    obtained = await api.post(f"/api/v1/tenders/{tender['id']}/documents/obtain", actors["bidder"])
    assert obtained.status_code < 300  # the bidder may bid on it
    known = {"tender_id": tender["id"], "organisation_id": agency.organisation_id}
    loop = asyncio.get_running_loop()

    mismatches: list[str] = []

    async def request(kwargs: dict[str, Any]) -> httpx.Response | None:
        try:
            response = await api.client.request(**kwargs)
        except (httpx.InvalidURL, httpx.LocalProtocolError, UnicodeEncodeError):
            return None
        except Mismatch as mismatch:  # the suite's own conformance check, on every 2xx JSON answer
            mismatches.append(str(mismatch))
            return None
        await response.aread()
        return response

    def send(kwargs: dict[str, Any]) -> httpx.Response | None:
        return asyncio.run_coroutine_threadsafe(request(kwargs), loop).result()

    failures, sent = await asyncio.to_thread(_run, schema, actors, known, send)
    found = failures + sorted(set(mismatches))
    assert not found, "\n\n".join(found)
    assert sent >= 1000
