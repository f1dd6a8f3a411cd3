"""The overview route."""

from __future__ import annotations

from fastapi import APIRouter, Response

from shopstack_common.problems import OVERVIEW_UNAVAILABLE, ProblemError
from shopstack_gateway.deps import ResourcesDep, UserDep
from shopstack_gateway.overview import service
from shopstack_gateway.overview.schemas import OverviewPublic

router = APIRouter(prefix="/api/v1/me", tags=["me"])


@router.get(
    "/overview",
    response_model=OverviewPublic,
    summary="The caller's profile and latest orders",
    description=(
        "The caller's profile (users) and their five latest orders with counts by status "
        "(orders), fetched at the same time. When one of them fails the answer is still 200, "
        "with that part null and named in `missing`; when both fail it is 503."
    ),
    responses={
        403: {"description": "The token belongs to a service client, not a user."},
        503: {"description": "Neither users nor orders answered (`missing` says why)."},
    },
)
async def get_overview(
    identity: UserDep, resources: ResourcesDep, response: Response
) -> OverviewPublic:
    overview = await service.build_overview(
        users=resources.upstreams["users"],
        orders=resources.upstreams["orders"],
        identity=identity,
        time_limit=resources.settings.overview_timeout_seconds,
    )
    if overview.profile is None and overview.orders is None:
        raise ProblemError(
            OVERVIEW_UNAVAILABLE,
            "Neither users nor orders could be reached.",
            headers={"Retry-After": "5"},
            extra={"missing": [part.model_dump() for part in overview.missing]},
        )
    # Personal data: never stored by a shared cache.
    response.headers["Cache-Control"] = "private, no-store"
    return overview
