"""Call routing: which client and limiter a batch's calls go through, and which IMS call an
action is (a read, a delete in either API version, or a re-create for an undo)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from worker.cloud.client import ImsClient, ims_endpoint
from worker.cloud.outcomes import Outcome, OutcomeKind
from worker.engine.context import EngineContext
from worker.errors import AuthError
from worker.jobs import Api
from worker.limits.limiter import SharedRateLimiter
from worker.model import ImageBatch

# The calls a batch can make: read its image's tags, delete them, or re-create them (undo).
Action = Literal["list", "delete", "create"]
# error_code given to rows when IAM refuses to issue a token (wrong user, password or scope).
IAM_REFUSED = "IAM.TOKEN_REFUSED"


@dataclass(frozen=True)
class Line:
    """Where a batch's calls go: the client for its endpoint, and the shared limiter of that
    endpoint and identity."""

    client: ImsClient
    limiter: SharedRateLimiter

    @property
    def bucket(self) -> str:
        """The (endpoint, identity) key of the limiter: the credential probe's key too."""
        return self.limiter.key


def line_for(ctx: EngineContext, batch: ImageBatch, endpoint_override: str | None) -> Line:
    endpoint = ims_endpoint(batch.region, endpoint_override)
    client = ctx.client_for(endpoint)
    return Line(client, ctx.limiter_for(endpoint, client.identity))


async def call_ims(client: ImsClient, batch: ImageBatch, action: Action, api: Api) -> Outcome:
    """Make ``action``'s call for the batch once; IAM refusing a token is an outcome too."""
    tags = [tag.tag for tag in batch.tags]
    project, image = batch.project_id, batch.image_id
    try:
        if action == "list":
            return await client.list_image_tags(project, image)
        if action == "create":
            return await client.tags_action(project, image, tags, action="create")
        if api is Api.V2:
            return await client.tags_action(project, image, tags, action="delete")
        return await client.batch_delete_tags(project, image, tags)
    except AuthError as exc:
        return Outcome(OutcomeKind.UNAUTHORIZED, exc.http_status, IAM_REFUSED, str(exc))
