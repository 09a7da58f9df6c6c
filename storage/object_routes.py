"""The local object store's presigned-URL endpoint: `PUT`/`GET /api/v1/objects/{token}`.

S3 serves its own presigned URLs; for the embedded `LocalObjectStore` this controller plays that part, so
a client uploads and downloads large objects the same way against both. The signed grant in the URL is
the whole authorisation (no login): it names the method, the key, the expiry and the maximum size, and
for one part of a multipart upload also the upload id and the part number; a PUT under a part grant
stores that part (answering its ETag, as S3's UploadPart does) and nothing else.
With any other store every request answers 404.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import PurePosixPath
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, put
from litestar.di import NamedDependency
from litestar.exceptions import ClientException, NotAuthorizedException, NotFoundException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter, SkipValidation
from litestar.response import Response, Stream
from litestar.status_codes import HTTP_201_CREATED

from storage.objects import (
    DEFAULT_CONTENT_TYPE,
    MAX_TOKEN_LENGTH,
    Grant,
    InvalidGrant,
    LocalObjectStore,
    ObjectNotFound,
    ObjectStore,
    UploadNotFound,
)

# A media type without oddities (RFC 9110 token characters, optional parameters), stored and served back.
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(?:\s*;[ -~]*)?")
_MAX_MEDIA_TYPE_LENGTH = 200

# The app provides these by name. Litestar cannot validate a Protocol or a Callable: it must not try.
StoreDependency = NamedDependency[SkipValidation[ObjectStore]]
ClockDependency = NamedDependency[SkipValidation[Callable[[], datetime]]]

# A grant this server signs is far shorter; the store refuses anything longer unread.
GrantToken = Annotated[str, Parameter(max_length=MAX_TOKEN_LENGTH)]


class UploadedObject(msgspec.Struct):
    """What was stored: the key, its size in bytes and its SHA-256 (hex)."""

    key: str
    size: int
    sha256: str


class UploadedPart(msgspec.Struct):
    """One part of a multipart upload was stored: its number, size in bytes and ETag (hex MD5, as in S3)."""

    key: str
    upload_id: str
    part_number: int
    size: int
    etag: str


class ObjectController(Controller):
    """Streams objects in and out of the local store under a presigned grant."""

    path = "/api/v1/objects"
    tags = ["objects"]

    @put(
        "/{token:str}",
        operation_id="object_upload",
        opt={"auth": "grant"},
        status_code=HTTP_201_CREATED,
        # The grant's own max_bytes is the limit; the app-wide body limit is for JSON requests.
        request_max_body_size=None,
        summary="Upload an object to a presigned URL",
    )
    async def upload(
        self,
        request: Request[Any, Any, Any],
        token: GrantToken,
        object_store: StoreDependency,
        clock_now: ClockDependency,
    ) -> Response[UploadedObject | UploadedPart]:
        """Stream the request body into the granted key (or part), refusing it (413) past the grant's cap."""
        store = _local(object_store)
        grant = _grant(store, token, "PUT", clock_now())
        if grant.max_bytes is not None and (request.content_length or 0) > grant.max_bytes:
            raise RequestEntityTooLarge(detail=f"this upload may be at most {grant.max_bytes} bytes")
        body = _capped(request.stream(), grant.max_bytes)
        if grant.upload_id is not None and grant.part_number is not None:
            return await _upload_part(store, grant.key, grant.upload_id, grant.part_number, body)
        content_type = _media_type(request.headers.get("content-type"))
        info = await store.put_stream(grant.key, body, content_type=content_type)
        uploaded = UploadedObject(key=info.key, size=info.size, sha256=info.sha256 or "")
        return Response(uploaded, status_code=HTTP_201_CREATED)

    @get(
        "/{token:str}",
        operation_id="object_download",
        opt={"auth": "grant"},
        summary="Download an object from a presigned URL",
        # The answer's own content type is the one given at upload; the document can only name the generic one.
        responses={
            200: ResponseSpec(
                data_container=bytes,
                media_type="application/octet-stream",
                description="The object's bytes, as an attachment, in the content type given at upload",
                generate_examples=False,
            )
        },
    )
    async def download(
        self, token: GrantToken, object_store: StoreDependency, clock_now: ClockDependency
    ) -> Stream:
        """Stream the granted object back, as an attachment the browser will not render in our origin."""
        store = _local(object_store)
        grant = _grant(store, token, "GET", clock_now())
        info = await store.stat(grant.key)
        if info is None:
            raise NotFoundException(detail="no object is stored under this grant's key")
        chunks = store.iter_chunks(grant.key)
        try:
            first = await anext(chunks)
        except ObjectNotFound as exc:  # deleted since the stat
            raise NotFoundException(detail="no object is stored under this grant's key") from exc
        except StopAsyncIteration:
            first = b""
        return Stream(
            _prepend(first, chunks),
            media_type=info.content_type,
            headers={
                # Uploaded bytes are the uploader's: never let them run as a page of this site.
                "Content-Disposition": f'attachment; filename="{PurePosixPath(grant.key).name}"',
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; sandbox",
                "Cache-Control": "private, no-store",
            },
        )


async def _upload_part(
    store: LocalObjectStore, key: str, upload_id: str, part_number: int, body: AsyncIterator[bytes]
) -> Response[UploadedObject | UploadedPart]:
    """Store one part; the content type is the upload's, given when it was started, so none is read here."""
    try:
        part = await store.put_part(key, upload_id, part_number, body)
    except UploadNotFound as exc:
        raise NotFoundException(
            detail="this multipart upload is no longer open (completed or aborted); start a new upload"
        ) from exc
    uploaded = UploadedPart(
        key=key, upload_id=upload_id, part_number=part.number, size=part.size, etag=part.etag
    )
    return Response(uploaded, status_code=HTTP_201_CREATED, headers={"ETag": f'"{part.etag}"'})


def _local(store: ObjectStore) -> LocalObjectStore:
    if not isinstance(store, LocalObjectStore):
        # With S3, presigned URLs point at S3 itself; this endpoint does not exist.
        raise NotFoundException()
    return store


def _grant(store: LocalObjectStore, token: str, method: str, now: datetime) -> Grant:
    try:
        return store.check_grant(token, method, now)
    except InvalidGrant as exc:
        raise NotAuthorizedException(detail=f"{exc}; ask for a new presigned URL") from exc


def _media_type(header: str | None) -> str:
    if not header:
        return DEFAULT_CONTENT_TYPE
    if len(header) > _MAX_MEDIA_TYPE_LENGTH or not _MEDIA_TYPE.fullmatch(header):
        raise ClientException(detail="Content-Type is not a valid media type")
    return header


async def _capped(body: AsyncIterator[bytes], max_bytes: int | None) -> AsyncIterator[bytes]:
    """Pass the body through, raising 413 once it exceeds `max_bytes` (a chunked body has no length)."""
    received = 0
    try:
        async for chunk in body:
            received += len(chunk)
            if max_bytes is not None and received > max_bytes:
                raise RequestEntityTooLarge(detail=f"this upload may be at most {max_bytes} bytes")
            yield chunk
    finally:
        aclose = getattr(body, "aclose", None)
        if aclose is not None:
            await aclose()


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        if first:
            yield first
        async for chunk in rest:
            yield chunk
    finally:
        aclose = getattr(rest, "aclose", None)
        if aclose is not None:
            await aclose()
