"""HTTP routes of the platform-wide transparency log: its key, signed heads and proofs (public: they carry
only hashes, and the log moves only when a tender's bids close, so nothing here counts or times bids before a
deadline, W-20)."""

from __future__ import annotations

import base64
from typing import Annotated

from litestar import Controller, get
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.guards import public
from bidding import schemas, service
from bidding.merkle import PublishedTreeHead
from storage.bounds import INT64_MAX
from storage.problems import NotFound
from storage.signing import LogSigner


class TransparencyController(Controller):
    """The platform-wide log (RFC 9162): one leaf per tender's closing head, signed at its deadline (before
    tender logs existed, one leaf per bid event)."""

    path = "/api/v1/transparency"
    tags = ["transparency"]

    @get("/key", operation_id="transparency_key", guards=[public])
    async def key(self, signer: LogSigner) -> schemas.TransparencyKey:
        """The Ed25519 key that signs tree heads and closing heads: pin it in `ggzy verify receipt --key`."""
        return {
            "log_id": service.LOG_ID,
            "public_key": base64.b64encode(signer.public_raw).decode(),
            "key_id": signer.key_id,
        }

    @get("/head", operation_id="transparency_head", guards=[public])
    async def head(
        self,
        session: AsyncSession,
        tree_size: Annotated[int | None, Parameter(query="tree_size", ge=1, le=INT64_MAX)] = None,
    ) -> PublishedTreeHead:
        """The newest signed tree head, or the one signed when the log reached `tree_size`."""
        if tree_size is not None:
            return await service.head_at(session, tree_size)
        head = await service.latest_head(session)
        if head is None:
            raise NotFound("The log is empty.")
        return head

    @get("/consistency", operation_id="transparency_consistency", guards=[public])
    async def consistency(
        self,
        session: AsyncSession,
        first: Annotated[int, Parameter(query="first", ge=0, le=INT64_MAX)],
        second: Annotated[int, Parameter(query="second", ge=0, le=INT64_MAX)],
    ) -> schemas.ConsistencyProof:
        """The proof that the log at `first` leaves is a prefix of the log at `second` (RFC 9162 §2.1.4)."""
        return {"first": first, "second": second, "proof": await service.consistency(session, first, second)}

    @get("/inclusion", operation_id="transparency_inclusion", guards=[public])
    async def inclusion(
        self,
        session: AsyncSession,
        leaf_index: Annotated[int, Parameter(query="leaf_index", ge=0, le=INT64_MAX)],
        tree_size: Annotated[int, Parameter(query="tree_size", ge=1, le=INT64_MAX)],
    ) -> schemas.InclusionProof:
        """The inclusion proof of a leaf in the log at `tree_size` leaves (RFC 9162 §2.1.3)."""
        return {
            "leaf_index": leaf_index,
            "tree_size": tree_size,
            "proof": await service.inclusion(session, leaf_index, tree_size),
        }
