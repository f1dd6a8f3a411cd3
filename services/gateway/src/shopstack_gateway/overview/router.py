"""The overview route."""

from __future__ import annotations

from fastapi import APIRouter, Response

from shopstack_common.fastapi_support import ProblemError
from shopstack_gateway.deps import RuntimeDep, UserDep
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
)
async def get_overview(
    identity: UserDep, runtime: RuntimeDep, response: Response
) -> OverviewPublic:
    overview = await service.build_overview(
        users=runtime.upstreams["users"],
        orders=runtime.upstreams["orders"],
        identity=identity,
        time_limit=runtime.settings.overview_timeout_seconds,
    )
    if overview.profile is None and overview.orders is None:
        raise ProblemError(
            503,
            slug="overview-unavailable",
            detail="Neither users nor orders could be reached.",
            headers={"Retry-After": "5"},
            extra={"missing": [part.model_dump() for part in overview.missing]},
        )
    # Personal data: never stored by a shared cache.
    response.headers["Cache-Control"] = "private, no-store"
    return overview
