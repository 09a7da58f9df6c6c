"""Composition root: builds the runtime (database, object store, job queue, clock), the Litestar app,
the arq worker and the `ggzy` CLI from the packages."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from typing import Any, TypedDict
from urllib.parse import parse_qsl

import click
from litestar import Litestar, Request, Response, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.routes import HTTPRoute
from litestar.types import Scope
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError

# Each package registers its jobs and chronograph stages, and bidding and evaluation plug their stages into
# the procedure engine, when imported: the composition root imports them all.
import accounts.jobs  # noqa: F401
import archive.jobs  # noqa: F401
import bidding.jobs
import bidding.stage  # noqa: F401
import escrow.jobs  # noqa: F401
import evaluation.jobs
import evaluation.stage  # noqa: F401
from accounts import service as accounts_service
from accounts.controllers import (
    AuditController,
    AuditHeadController,
    AuthController,
    JobsController,
    OrganisationController,
)
from accounts.guards import AuthenticationMiddleware, provide_optional_principal, provide_principal, public
from accounts.security import PasswordCost, Principal, configure_password_cost
from accounts.signin import SignInThrottle, build_throttle
from archive.controllers import ArchiveController
from bidding.controllers import BIDDING_CONTROLLERS
from demo.cli import demo_command
from escrow.bank_controllers import BankController
from escrow.controllers import LedgerController, LedgerHeadController
from escrow.deposit_controllers import DepositController, TenderManager
from escrow.supervision_controllers import SupervisionController
from evaluation.controllers import EVALUATION_CONTROLLERS
from storage import rehearsal
from storage.clock import Clock, SystemClock
from storage.db import SINGLE_READ, create_engine, create_sessionmaker, transaction
from storage.jobs import (
    ArqJobQueue,
    InlineJobQueue,
    JobContext,
    JobQueue,
    OutboxDispatcher,
    Periodic,
    RetryPolicy,
    SequentialJobQueue,
)
from storage.object_routes import ObjectController
from storage.objects import ObjectStore, build_store
from storage.openapi import ComponentDescriptions, document_problems, first_sentence
from storage.problem_http import problem_response
from storage.problems import PreconditionFailed, Problem, field_error
from storage.settings import Settings, SettingsError
from storage.signing import LogSigner
from trading import jobs as trading_jobs
from trading import tenders
from trading.controllers import TRADING_CONTROLLERS
from trading.rehearsal import ClockController

log = logging.getLogger("ggzy")


@dataclass
class Runtime:
    """Everything a ggzy process shares: one engine, one store, one queue, one clock."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    clock: Clock
    store: ObjectStore
    queue: JobQueue
    dispatcher: OutboxDispatcher
    signer: LogSigner
    throttle: SignInThrottle
    run_chronograph: bool = True
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def job_context(self) -> JobContext:
        return JobContext(
            self.sessionmaker,
            self.clock,
            {"store": self.store, "settings": self.settings, "signer": self.signer},
            RetryPolicy.from_settings(self.settings),
        )

    async def start(self) -> None:
        """Open the store and the queue; in the embedded setup, run dispatcher and chronograph in-process."""
        await self.store.ensure_ready()
        await self.queue.start()
        self._stop.clear()
        self._tasks.append(asyncio.create_task(self.dispatcher.run(self._stop)))
        if self.settings.rehearsal:
            self._tasks.append(
                asyncio.create_task(rehearsal.keep_fresh(self.clock, self.sessionmaker, self._stop))
            )
        if self.run_chronograph:
            ticker = Periodic(lambda: chronograph_tick(self.job_context), self.settings.tick_seconds)
            self._tasks.append(asyncio.create_task(ticker.run(self._stop)))

    async def stop(self) -> None:
        """Stop background work and release connections."""
        self._stop.set()
        for task in self._tasks:
            await task
        self._tasks.clear()
        await self.queue.close()
        await self.throttle.close()
        await self.engine.dispose()


async def chronograph_tick(ctx: JobContext) -> list[tuple[str, str]]:
    """The chronograph's tick, on the rehearsal clock's stored pace where there is one."""
    await rehearsal.refresh(ctx.clock, ctx.sessionmaker)
    return await trading_jobs.chronograph_tick(ctx)


def build_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    store: ObjectStore | None = None,
    engine: AsyncEngine | None = None,
    queue: JobQueue | None = None,
    throttle: SignInThrottle | None = None,
    sessionmaker: async_sessionmaker[AsyncSession] | None = None,
    sequential_jobs: bool = False,
) -> Runtime:
    """Wire the runtime from settings; tests pass their own clock, store, engine, queue or throttle.
    `sessionmaker` replaces the engine's (the demo's seeding passes one transaction's); `sequential_jobs`
    runs the jobs in this process one at a time when drained (`SequentialJobQueue`), even where
    GGZY_REDIS_URL names a queue."""
    clock = clock or rehearsal.build_clock(settings)
    configure_password_cost(
        PasswordCost(settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism)
    )
    engine = engine or create_engine(settings.effective_database_url, pool_size=settings.db_pool_size)
    sessionmaker = sessionmaker or create_sessionmaker(engine)
    store = store or build_store(settings, clock)
    signer = LogSigner.from_secret(settings.secret_key, settings.log_signing_key)
    extras: dict[str, Any] = {"store": store, "settings": settings, "signer": signer}
    retry = RetryPolicy.from_settings(settings)
    if queue is None and sequential_jobs:
        queue = SequentialJobQueue(JobContext(sessionmaker, clock, extras, retry))
    if queue is None:
        if settings.redis_url:
            queue = ArqJobQueue(settings.redis_url)
        else:
            queue = InlineJobQueue(JobContext(sessionmaker, clock, extras, retry))
    dispatcher = OutboxDispatcher(sessionmaker, queue, clock, retry=retry)
    return Runtime(
        settings,
        engine,
        sessionmaker,
        clock,
        store,
        queue,
        dispatcher,
        signer,
        throttle or build_throttle(settings),
        run_chronograph=not settings.redis_url,
    )


# ---------------------------------------------------------------- problems (RFC 9457)


class MalformedRequest(Problem):
    """The request is not the shape the route expects (bad JSON, wrong types, unknown fields)."""

    status = 400
    slug = "malformed-request"
    title = "Invalid request"


class NotJson(Problem):
    """A route that reads JSON was sent a body of another media type."""

    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"


def _on_problem(request: Request[Any, Any, Any], exc: Problem) -> Response[Any]:
    return problem_response(exc, request)


_NAMED_FIELD = re.compile(r"(?:unknown|missing required) field `([^`]*)`")


def _error_field(item: dict[str, Any], request: Request[Any, Any, Any]) -> dict[str, Any]:
    """One of Litestar's validation messages as an `errors[]` entry naming the field a client sent.

    Body fields are named by their path in the body (`lots[0].deposit_fen`); an unknown or missing field
    by its own name rather than the object holding it; query parameters by name; others as `source:name`.
    """
    raw_source = item.get("source")
    source = str(getattr(raw_source, "value", raw_source) or "body")
    key = str(item.get("key") or "")
    message = str(item.get("message", "invalid"))
    if source == "header":
        return field_error(f"header:{_header_name(request, key)}", message)
    if source != "body":
        return field_error(key if source == "query" else f"{source}:{key}", message)
    path = "" if key == "data" else key
    if key == "data" and message in ("'data'", "Object missing required field `data`"):
        return field_error("body", "a JSON object is required")
    if named := _NAMED_FIELD.search(message):
        path = f"{path}.{named.group(1)}" if path else named.group(1)
    return field_error(path or "body", message)


def _header_name(request: Request[Any, Any, Any], key: str) -> str:
    """The header a handler's parameter `key` is read from (`Last-Event-ID` for `last_event_id`)."""
    parameter = request.route_handler.parsed_fn_signature.parameters.get(key)
    header = getattr(getattr(parameter, "kwarg_definition", None), "header", None)
    return str(header or key)


def _on_validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    errors = [_error_field(item, request) for item in (exc.extra if isinstance(exc.extra, list) else [])]
    problem = MalformedRequest(
        "The request does not match the expected shape; see errors.",
        errors=errors or [field_error("body", str(exc.detail))],
    )
    return problem_response(problem, request)


def _on_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if status >= 500:
        log.error("server error on %s %s: %s", request.method, request.url.path, exc.detail, exc_info=exc)
    problem = Problem(str(exc.detail), title=HTTPStatus(status).phrase, headers=dict(exc.headers or {}))
    problem.status = status
    problem.slug = HTTPStatus(status).phrase.lower().replace(" ", "-")
    return problem_response(problem, request)


def _on_stale(request: Request[Any, Any, Any], _exc: StaleDataError) -> Response[Any]:
    return problem_response(
        PreconditionFailed("Someone changed this resource at the same moment; reload it."), request
    )


def _on_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.error(
        "unhandled error on %s %s: %s", request.method, request.url.path, type(exc).__name__, exc_info=exc
    )
    problem = Problem("Something went wrong on our side; nothing was changed.", title="Internal error")
    problem.status = 500
    problem.slug = "internal"
    return problem_response(problem, request)


async def _audit_refusal(exc: Exception, scope: Scope) -> None:
    """Keep a refused action (e.g. a failed sign-in) in the audit trail (E-04).

    Runs after the request's own transaction has rolled back with the refusal, so the event is written
    in a short transaction of its own.
    """
    state = scope["litestar_app"].state
    refusal = getattr(exc, "refusal", None)
    if not isinstance(refusal, accounts_service.Refusal):
        refusal = _refused_attempt(exc, scope, state.clock.now())
    if refusal is not None:
        await accounts_service.record_refusal(state.sessionmaker, refusal)


AUDITED_REFUSALS = frozenset({403, 404, 409, 412})


def _refused_attempt(exc: Exception, scope: Scope, now: datetime) -> accounts_service.Refusal | None:
    """What a signed-in caller tried and a rule, a role, the state or the object's owner refused (a late
    bid, a premature award, another organisation's tender answered as not found …): supervisors see
    attempts as well as acts. Plain validation errors and anonymous calls are not kept."""
    principal = scope.get("user")
    if not isinstance(exc, Problem) or not isinstance(principal, Principal):
        return None
    if exc.rule is None and exc.status not in AUDITED_REFUSALS:
        return None  # a mistyped field is no attempt worth a supervisor's eye; a rule, a role or the state is
    handler = scope.get("route_handler")
    action = str(getattr(handler, "operation_id", None) or getattr(handler, "handler_name", "request"))
    tender_id = scope.get("path_params", {}).get("tender_id")
    detail: dict[str, Any] = {"status": exc.status, "method": scope.get("method"), "path": scope.get("path")}
    if exc.rule:
        detail["rule"] = exc.rule
    if tender_id:  # a refused attempt on a tender may show a bidder's interest in it (W-20)
        detail["sealed_tender"] = str(tender_id)
    return accounts_service.Refusal(
        actor=principal,
        action=action[:60],
        object_type="tender" if tender_id else "route",
        object_id=str(tender_id or scope.get("path", ""))[:64],
        at=now,
        detail=detail,
    )


def _nul_in_json(value: Any) -> str | None:
    """The path of the first string (or key) in a decoded JSON value holding a NUL character, or None.

    Iterative, so a deeply nested body cannot exhaust the interpreter's stack.
    """
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return path or "body"
        elif isinstance(item, dict):
            children = [(f"{path}.{key}" if path else str(key), key, child) for key, child in item.items()]
            for here, key, _child in children:
                if "\x00" in str(key):
                    return here
            stack.extend((here, child) for here, _key, child in reversed(children))
        elif isinstance(item, list):
            stack.extend((f"{path}[{index}]", child) for index, child in reversed(list(enumerate(item))))
    return None


class _JsonObject(dict[str, Any]):
    """A decoded JSON object that remembers the first key it was given twice."""

    duplicate: str | None = None


def _object_pairs(pairs: list[tuple[str, Any]]) -> _JsonObject:
    decoded = _JsonObject(pairs)
    if len(decoded) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                decoded.duplicate = key
                break
            seen.add(key)
    return decoded


def _first_duplicate(body: bytes) -> str | None:
    """The path of the first key that appears twice in one object of a JSON body, or None.

    The body has already decoded as JSON; it is decoded once more keeping every key, since a decoder that
    lets the last of two keys win would act on a value the client's own reading of the body may not see.
    """
    try:
        value = json.loads(body, object_pairs_hook=_object_pairs)
    except (ValueError, RecursionError):
        return None  # beyond this decoder's limits (a huge number): the first decoding has judged it
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, _JsonObject):
            if item.duplicate is not None:
                return f"{path}.{item.duplicate}" if path else item.duplicate
            stack.extend((f"{path}.{key}" if path else key, child) for key, child in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend((f"{path}[{index}]", child) for index, child in reversed(list(enumerate(item))))
    return None


async def _duplicate_in_json(body: bytes) -> str | None:
    """`_first_duplicate`, off the event loop for a large body."""
    if len(body) < 64 * 1024:
        return _first_duplicate(body)
    return await asyncio.to_thread(_first_duplicate, body)


def _nul_in_query(query_string: bytes) -> str | None:
    """The name of the first query parameter whose name or value holds a NUL character, or None."""
    if b"%00" not in query_string.lower() and b"\x00" not in query_string:
        return None
    for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if "\x00" in key or "\x00" in value:
            return key.replace("\x00", "") or "query"
    return None


def allowed_methods(app: Litestar) -> dict[str, str]:
    """The `Allow` header of every path: all the methods its handlers answer.

    Litestar writes the automatic OPTIONS answer of a path from the handlers of the first controller that
    declares it, so a path served by several (`GET` here, `POST` there) would list only some of them.
    """
    methods: dict[str, set[str]] = {}
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            methods.setdefault(route.path, set()).update(route.methods)
    return {path: ", ".join(sorted(names)) for path, names in methods.items()}


def _options(request: Request[Any, Any, Any]) -> Response[Any] | None:
    """The answer to OPTIONS on a path, listing every method the path answers."""
    allow: dict[str, str] = request.app.state.allow
    for path in request.route_handler.paths:
        if path in allow:
            return Response(content=None, status_code=204, headers={"Allow": allow[path]})
    return None


async def screen_request(request: Request[Any, Any, Any]) -> Response[Any] | None:
    """Answer OPTIONS for the whole path, then screen the request's text (`screen_request_text`)."""
    if request.method == "OPTIONS":
        return _options(request)
    await screen_request_text(request)
    return None


async def screen_request_text(request: Request[Any, Any, Any]) -> None:
    """Refuse a JSON body that does not decode, and text holding NUL characters in the query or the body,
    naming the field (400).

    PostgreSQL cannot store U+0000 in text (SQLite silently would), so without this such input ends as a
    500 on one backend and as stored garbage on the other. Runs after the guards, before the handler's
    own parsing, which then reuses the decoded body.
    """
    if (name := _nul_in_query(request.scope.get("query_string", b""))) is not None:
        raise MalformedRequest(
            "Text may not contain NUL characters.",
            errors=[field_error(name, "contains a NUL character")],
        )
    if "data" not in request.route_handler.parsed_fn_signature.parameters:
        return
    media_type, _params = request.content_type
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise NotJson(
            "Send the body as JSON, with Content-Type: application/json.",
            errors=[field_error("header:Content-Type", f"{media_type or 'absent'}, not application/json")],
        )
    try:
        value = await request.json()
    except SerializationException as exc:
        raise MalformedRequest(
            "The request body is not valid JSON.", errors=[field_error("body", str(exc))]
        ) from exc
    except RecursionError as exc:
        raise MalformedRequest(
            "The JSON body is nested too deeply.", errors=[field_error("body", "nested too deeply")]
        ) from exc
    if (path := _nul_in_json(value)) is not None:
        raise MalformedRequest(
            "Text may not contain NUL characters.",
            errors=[field_error(path, "contains a NUL character")],
        )
    if (path := await _duplicate_in_json(await request.body())) is not None:
        raise MalformedRequest(
            "Each key may appear once in an object.", errors=[field_error(path, "duplicate key")]
        )


# ---------------------------------------------------------------- dependencies


def _runtime(state: State) -> Runtime:
    runtime: Runtime = state.runtime
    return runtime


SAFE_METHODS = frozenset({"GET", "HEAD"})


async def provide_sealed_tenders(session: AsyncSession) -> frozenset[uuid.UUID]:
    """Dependency: the tenders whose bids are still sealed (W-20), for packages below trading (the audit
    trail) that must hide what shows a bidder taking part in them."""
    return await tenders.sealed_tender_ids(session)


async def agency_manages_tender(session: AsyncSession, principal: Principal, tender_id: uuid.UUID) -> bool:
    """The `tender_manager` dependency of packages below trading (escrow's forfeiture proposal): whether
    the principal's agency runs the tender."""
    try:
        await tenders.tender_for_agency(session, principal, tender_id)
    except Problem:
        return False
    return True


def provide_tender_manager() -> TenderManager:
    """Dependency: the answer to "does this agency manage the tender" for escrow's controllers."""
    return agency_manages_tender


async def provide_session(state: State, request: Request[Any, Any, Any]) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed when the handler succeeds, rolled back when it raises.
    GET and HEAD only read, so they take no write lock."""
    runtime = _runtime(state)
    read_only = request.method in SAFE_METHODS
    single_read = read_only and bool(request.route_handler.opt.get(SINGLE_READ))
    async with transaction(runtime.sessionmaker, read_only=read_only, single_read=single_read) as session:
        yield session
    if not read_only:
        runtime.dispatcher.kick()


class HealthStatus(TypedDict):
    """Whether the process serves: `status` is "ok" from the liveness probe and "ready" from the readiness
    probe (which answers a 503 problem instead when the database does not answer)."""

    status: str


@get("/health", operation_id="health", guards=[public], tags=["system"])
async def health() -> HealthStatus:
    """Liveness: the process answers (200 with no check of anything it depends on); a load balancer's probe."""
    return {"status": "ok"}


@get("/health/ready", operation_id="readiness", guards=[public], tags=["system"])
async def ready(state: State) -> HealthStatus:
    """Readiness: the database answers a query, so the process can serve requests (503 problem otherwise)."""
    async with _runtime(state).engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    return {"status": "ready"}


def check_guards(app: Litestar) -> None:
    """Refuse to build an app with a route that has no authorisation guard."""
    missing = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            automatic_options = set(getattr(handler, "http_methods", ())) == {"OPTIONS"}
            if route.path.startswith("/schema") or handler.opt.get("auth") == "grant" or automatic_options:
                continue
            if not handler.resolve_guards():
                missing.append(f"{route.path} {sorted(getattr(handler, 'http_methods', []))}")
    if missing:
        raise RuntimeError(f"routes without a guard: {missing}")


API_DESCRIPTION = """The HTTP API of a public-resource trading centre (公共资源交易中心): tenders and their
documents, sealed bids, deposits in escrow, the opening, the committee draw and evaluation, awards and
contracts, and the signed logs anyone can verify offline.

Sign in with `POST /api/v1/auth/login` and send the token as `Authorization: Bearer …` (the `bearer`
scheme); operations marked without security answer the public too. Times are UTC instants (RFC 3339),
money is integer fen (`*_fen`). Every refusal is an RFC 9457 problem (`application/problem+json`) whose
`rule` names the rule of RULES.md that refused it and whose `errors` name the fields. Operations that
change a resource others may change too take `If-Match` with its `ETag`; those that move money or submit
a bid take an `Idempotency-Key`."""


def document_operations(app: Litestar) -> None:
    """State in the OpenAPI document what each operation does and who may call it: its summary is the first
    sentence of its docstring (the whole docstring is its description); public operations (the `public`
    guard) need nothing and take a token if one is sent, every other operation needs the bearer token."""
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if not isinstance(handler, HTTPRouteHandler):
                continue
            if handler.summary is None and handler.fn.__doc__:
                handler.summary = first_sentence(handler.fn.__doc__)
            if handler.opt.get("auth") == "grant":
                handler.security = [{}]  # the signed token in the path is the capability
            elif public in handler.resolve_guards():
                handler.security = [{}, {"bearer": []}]
            else:
                handler.security = [{"bearer": []}]


def create_app(runtime: Runtime, *, manage_runtime: bool = True) -> Litestar:
    """The HTTP application on `runtime`."""

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        if manage_runtime:
            await runtime.start()
        try:
            yield
        finally:
            if manage_runtime:
                await runtime.stop()

    def _clock_now() -> Callable[[], datetime]:
        return runtime.clock.now

    app = Litestar(
        route_handlers=[
            health,
            ready,
            AuthController,
            ArchiveController,
            OrganisationController,
            AuditController,
            JobsController,
            ObjectController,
            *TRADING_CONTROLLERS,
            *BIDDING_CONTROLLERS,
            LedgerHeadController,
            AuditHeadController,
            LedgerController,
            DepositController,
            BankController,
            SupervisionController,
            *EVALUATION_CONTROLLERS,
            ClockController,
        ],
        dependencies={
            "session": Provide(provide_session),
            "clock": Provide(lambda: runtime.clock, sync_to_thread=False),
            "clock_now": Provide(_clock_now, sync_to_thread=False),
            "settings": Provide(lambda: runtime.settings, sync_to_thread=False),
            "object_store": Provide(lambda: runtime.store, sync_to_thread=False),
            "signer": Provide(lambda: runtime.signer, sync_to_thread=False),
            "sessionmaker": Provide(lambda: runtime.sessionmaker, sync_to_thread=False),
            "throttle": Provide(lambda: runtime.throttle, sync_to_thread=False),
            "sealed_tenders": Provide(provide_sealed_tenders),
            "tender_manager": Provide(provide_tender_manager, sync_to_thread=False),
            "principal": Provide(provide_principal),
            "request_principal": Provide(provide_optional_principal, sync_to_thread=False),
        },
        middleware=[AuthenticationMiddleware()],
        before_request=screen_request,
        after_exception=[_audit_refusal],
        exception_handlers={
            Problem: _on_problem,
            ValidationException: _on_validation,
            HTTPException: _on_http,
            StaleDataError: _on_stale,
            Exception: _on_error,
        },
        plugins=[ComponentDescriptions()],
        openapi_config=OpenAPIConfig(
            title="ggzy — public-resource trading platform",
            version="0.1.0",
            description=API_DESCRIPTION,
            path="/schema",
            render_plugins=[ScalarRenderPlugin()],
            use_handler_docstrings=True,
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        bearer_format="ggzy access or API token",
                        description=(
                            "Send `Authorization: Bearer TOKEN`: an access token from `POST /api/v1/auth/login` "
                            "(username and password), or an API token from `POST /api/v1/auth/tokens`."
                        ),
                    )
                }
            ),
        ),
        request_max_body_size=runtime.settings.max_body_bytes,
        lifespan=[lifespan],
        state=State(
            {
                "runtime": runtime,
                "clock": runtime.clock,
                "sessionmaker": runtime.sessionmaker,
                "settings": runtime.settings,
            }
        ),
        debug=False,
    )
    check_guards(app)
    app.state.allow = allowed_methods(app)
    document_problems(h for route in app.routes for h in getattr(route, "route_handlers", []))
    document_operations(app)
    if runtime.settings.rehearsal:
        # Around everything Litestar answers, unknown paths and errors included.
        app.asgi_handler = rehearsal.RehearsalMarker(app.asgi_handler, runtime.clock, runtime.sessionmaker)
    return app


# ---------------------------------------------------------------- CLI


def settings_from_env() -> Settings:
    """The settings, or a usage error naming what contradicts itself (e.g. a production rehearsal)."""
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from exc


@click.command()
@click.option("--host", default=None, help="Interface to bind (GGZY_HOST, default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (GGZY_PORT, default 8000).")
def serve(host: str | None, port: int | None) -> None:
    """Run the HTTP server (with jobs and the chronograph in-process unless GGZY_REDIS_URL is set)."""
    import uvicorn

    settings = serve_settings(settings_from_env(), host, port)
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(build_runtime(settings))
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")


def serve_settings(settings: Settings, host: str | None, port: int | None) -> Settings:
    """The settings `ggzy serve` runs on: its --host and --port are also where the presigned URLs of the
    local object store point, unless GGZY_PUBLIC_URL names another address."""
    return dataclasses.replace(settings, host=host or settings.host, port=port or settings.port)


@click.command()
def worker() -> None:
    """Run the arq worker on GGZY_REDIS_URL: jobs from the outbox and the chronograph as a cron."""
    from arq.worker import Worker

    from storage.jobs import worker_settings

    settings = settings_from_env()
    if not settings.redis_url:
        raise click.UsageError("GGZY_REDIS_URL is not set; `ggzy serve` runs jobs in-process instead.")
    runtime = build_runtime(settings)

    async def ctx_factory() -> JobContext:
        await runtime.store.ensure_ready()
        return runtime.job_context

    async def run() -> None:
        kwargs = worker_settings(
            ctx_factory,
            settings.redis_url,
            cron=[("chronograph_tick", chronograph_tick, max(1, int(settings.tick_seconds)))],
        )
        dispatcher_stop = asyncio.Event()
        await runtime.queue.start()
        background = [asyncio.create_task(runtime.dispatcher.run(dispatcher_stop))]
        if settings.rehearsal:
            background.append(
                asyncio.create_task(
                    rehearsal.keep_fresh(runtime.clock, runtime.sessionmaker, dispatcher_stop)
                )
            )
        try:
            await Worker(**kwargs).async_run()
        finally:
            dispatcher_stop.set()
            for task in background:
                await task
            await runtime.queue.close()

    asyncio.run(run())


# `ggzy demo`: its private server and the seed's in-process one are built here, like every server.
demo = demo_command(build_runtime, create_app)


@click.group("storage")
def storage_group() -> None:
    """The object store."""


@storage_group.command("sweep")
def storage_sweep() -> None:
    """Remove expired uploads, their open multipart uploads and copies no record took; never an object a
    record points to. Prints what was removed as JSON; exits 1 if an object could not be removed."""
    from storage import uploads

    settings = settings_from_env()
    clock = SystemClock()

    async def run() -> uploads.Swept:
        engine = create_engine(settings.effective_database_url)
        try:
            store = build_store(settings, clock)
            await store.ensure_ready()
            return await uploads.sweep(create_sessionmaker(engine), store, clock.now())
        finally:
            await engine.dispose()

    swept = asyncio.run(run())
    click.echo(json.dumps(swept.to_dict()))
    if swept.failed:
        raise SystemExit(1)
