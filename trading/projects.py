"""Project acceptance (项目受理): before any tender of a project may start, its agency registers the project
with the trading centre together with its approval documents (the approving body's document number, where
the money comes from, and in government procurement the procurement plan it carries out), and the centre
accepts it or refuses it with reasons. Only an accepted project's tenders are published."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from accounts.security import Principal
from storage.objects import InvalidObjectKey, ObjectStore
from storage.pagination import check_limit, decode_cursor, page_after
from storage.problems import Conflict, Forbidden, NotFound, ValidationProblem, field_error
from trading import schemas
from trading.models import Project, Tender

# Who sees every project: the centre and those who oversee its work (as `tenders.OVERSEERS`).
OVERSEERS = ("centre", "supervisor", "auditor")


def project_read(p: Project) -> schemas.ProjectRead:
    return schemas.ProjectRead(
        id=p.id,
        agency_organisation_id=p.agency_organisation_id,
        name=p.name,
        sector=p.sector,
        funding_source=p.funding_source,
        approval_number=p.approval_number,
        procurement_plan_number=p.procurement_plan_number,
        budget_fen=p.budget_fen,
        documents=[str(key) for key in p.documents],
        status=p.status,
        reasons=p.reasons,
        created_at=p.created_at,
        decided_at=p.decided_at,
    )


def sees_project(actor: Principal, project: Project) -> bool:
    """Its agency, the centre, supervisors and auditors see a project; nobody else learns it exists."""
    owns = actor.has("agency") and actor.organisation_id == project.agency_organisation_id
    return owns or actor.has(*OVERSEERS)


async def _check_documents(store: ObjectStore, actor: Principal, keys: list[str]) -> None:
    """Each approval document is a file the caller's organisation uploaded and the store holds."""
    for key in keys:
        if f"/{actor.organisation_id}/" not in key:
            raise ValidationProblem(
                "An approval document must be a file your organisation uploaded.",
                errors=[field_error("documents", f"not an upload of yours: {key}")],
            )
        try:
            found = await store.stat(key)
        except InvalidObjectKey:
            found = None
        if found is None:
            raise ValidationProblem(
                "Nothing was uploaded under this object key.",
                errors=[field_error("documents", f"no such object: {key}")],
            )


async def register(
    session: AsyncSession, actor: Principal, data: schemas.ProjectCreate, store: ObjectStore, now: datetime
) -> Project:
    """Register a project with the centre, pending its acceptance. A procurement names its procurement
    plan (采购计划)."""
    await accounts.require_active(session, actor)
    if data.sector == "procurement" and not data.procurement_plan_number:
        raise ValidationProblem(
            "A government procurement project names the procurement plan it carries out.",
            errors=[field_error("procurement_plan_number", "required for procurement")],
        )
    documents = list(dict.fromkeys(data.documents))
    await _check_documents(store, actor, documents)
    project = Project(
        agency_organisation_id=actor.organisation_id,
        name=data.name,
        sector=data.sector,
        budget_fen=data.budget_fen,
        funding_source=data.funding_source,
        approval_number=data.approval_number,
        procurement_plan_number=data.procurement_plan_number,
        documents=documents,
        status="pending",
        created_at=now,
    )
    session.add(project)
    await session.flush()
    await accounts.record(session, actor, "project.register", "project", project.id, now, sector=data.sector)
    return project


async def visible_project(
    session: AsyncSession, actor: Principal, project_id: uuid.UUID, *, lock: bool = False
) -> Project:
    """The project if the caller may see it; 404 otherwise."""
    query = select(Project).where(Project.id == project_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    project = await session.scalar(query)
    if project is None or not sees_project(actor, project):
        raise NotFound("No such project.")
    return project


async def decide(
    session: AsyncSession,
    actor: Principal,
    project_id: uuid.UUID,
    data: schemas.ProjectDecision,
    now: datetime,
) -> Project:
    """The centre accepts the project or refuses it with reasons; it decides once."""
    project = await visible_project(session, actor, project_id, lock=True)
    if project.status != "pending":
        raise Conflict(f"The project was already {project.status}.", status_now=project.status)
    if data.decision == "refused" and not data.reasons:
        raise ValidationProblem(
            "Give the reasons for refusing the project.", errors=[field_error("reasons", "required")]
        )
    project.status = data.decision
    project.reasons = data.reasons
    project.decided_at = now
    project.decided_by = actor.user_id
    await accounts.record(
        session, actor, f"project.{data.decision}", "project", project.id, now, reasons=data.reasons
    )
    return project


async def list_projects(
    session: AsyncSession, actor: Principal, *, status: str | None, cursor: str | None, limit: int
) -> tuple[list[Project], str | None]:
    """The projects the caller sees, newest first: an agency its own; the centre and those who watch it
    all of them."""
    limit = check_limit(limit)
    query = select(Project).order_by(Project.created_at.desc(), Project.id.desc()).limit(limit + 1)
    if not actor.has(*OVERSEERS):
        if not actor.has("agency"):
            raise Forbidden("Only agencies and those who oversee the centre see projects.")
        query = query.where(Project.agency_organisation_id == actor.organisation_id)
    if status:
        query = query.where(Project.status == status)
    if cursor:
        at, row_id = decode_cursor(cursor)
        query = query.where((Project.created_at < at) | ((Project.created_at == at) & (Project.id < row_id)))
    return page_after(list(await session.scalars(query)), limit, "created_at")


async def check_for_tender(
    session: AsyncSession, agency_id: uuid.UUID, project_id: uuid.UUID | None, sector: str
) -> None:
    """A tender is created under one of its agency's own projects, of the same sector."""
    if project_id is None:
        return
    project = await session.get(Project, project_id)
    if project is None or project.agency_organisation_id != agency_id:
        raise ValidationProblem(
            "No such project of your agency.", errors=[field_error("project_id", "no such project")]
        )
    if project.sector != sector:
        raise ValidationProblem(
            f"The project is a {project.sector} project; its tenders are {project.sector} tenders.",
            errors=[field_error("project_id", f"a {project.sector} project")],
        )


async def require_accepted(session: AsyncSession, tender: Tender) -> None:
    """Only a tender of a project the centre accepted is published."""
    project = await session.get(Project, tender.project_id) if tender.project_id else None
    if project is None:
        raise Conflict(
            "Register the tender's project with the centre and have it accepted (项目受理) before publishing.",
            errors=[field_error("project_id", "no project")],
        )
    if project.status != "accepted":
        why = f": {project.reasons}" if project.reasons else ""
        raise Conflict(
            f"The centre has not accepted the tender's project; it is {project.status}{why}.",
            errors=[field_error("project_id", f"project {project.status}")],
        )
