"""Fetch the overview's parts from users and orders at the same time, on the caller's behalf."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp
from pydantic import ValidationError

from shopstack_common.context import REQUEST_ID_HEADER, current_request_id
from shopstack_common.identity import Identity
from shopstack_gateway.overview.schemas import (
    MissingPart,
    OrdersOverview,
    OverviewPublic,
    Part,
    ProfilePublic,
)
from shopstack_gateway.resilience import CircuitOpenError
from shopstack_gateway.upstreams import Upstream, UpstreamTimeoutError, UpstreamUnreachableError

logger = logging.getLogger(__name__)

PROFILE_PATH = "/api/v1/users/me"
LATEST_ORDERS_PATH = "/api/v1/orders?limit=5"
ORDER_SUMMARY_PATH = "/api/v1/orders/summary"


class PartFailedError(Exception):
    def __init__(self, status: int | None, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


async def get_json(
    upstream: Upstream, target: str, *, identity: Identity, time_limit: float
) -> Any:
    headers = {"Accept": "application/json", **identity.to_headers()}
    request_id = current_request_id()
    if request_id:
        headers[REQUEST_ID_HEADER] = request_id
    try:
        response = await upstream.open(
            "GET",
            target,
            headers=headers,
            idempotent=True,
            client_timeout=aiohttp.ClientTimeout(total=time_limit),
        )
    except CircuitOpenError:
        raise PartFailedError(None, f"{upstream.name} is failing; not asked.") from None
    except UpstreamTimeoutError:
        raise PartFailedError(None, f"{upstream.name} did not answer in time.") from None
    except UpstreamUnreachableError:
        raise PartFailedError(None, f"{upstream.name} is unreachable.") from None
    try:
        if response.status != 200:
            raise PartFailedError(response.status, f"{upstream.name} answered {response.status}.")
        try:
            return await response.json(content_type=None)
        except (json.JSONDecodeError, aiohttp.ClientError):
            raise PartFailedError(
                response.status, f"{upstream.name} sent an unreadable answer."
            ) from None
    except TimeoutError:
        raise PartFailedError(None, f"{upstream.name} did not answer in time.") from None
    finally:
        response.release()


async def _profile(users: Upstream, identity: Identity, time_limit: float) -> ProfilePublic:
    body = await get_json(users, PROFILE_PATH, identity=identity, time_limit=time_limit)
    try:
        return ProfilePublic.model_validate(body)
    except ValidationError:
        raise PartFailedError(200, "users sent a profile of an unexpected shape.") from None


async def _orders(orders: Upstream, identity: Identity, time_limit: float) -> OrdersOverview:
    latest, summary = await asyncio.gather(
        get_json(orders, LATEST_ORDERS_PATH, identity=identity, time_limit=time_limit),
        get_json(orders, ORDER_SUMMARY_PATH, identity=identity, time_limit=time_limit),
    )
    try:
        return OrdersOverview(
            latest=latest["items"],
            counts_by_status=summary["counts_by_status"],
            total=summary["total"],
        )
    except (KeyError, TypeError, ValidationError):
        raise PartFailedError(200, "orders sent an answer of an unexpected shape.") from None


async def build_overview(
    *, users: Upstream, orders: Upstream, identity: Identity, time_limit: float
) -> OverviewPublic:
    profile_result, orders_result = await asyncio.gather(
        _profile(users, identity, time_limit),
        _orders(orders, identity, time_limit),
        return_exceptions=True,
    )
    missing: list[MissingPart] = []
    parts: list[tuple[Part, object]] = [("profile", profile_result), ("orders", orders_result)]
    for part, result in parts:
        if isinstance(result, PartFailedError):
            logger.warning("overview without %s: %s", part, result.detail)
            missing.append(MissingPart(part=part, status=result.status, detail=result.detail))
        elif isinstance(result, BaseException):
            raise result
    return OverviewPublic(
        profile=profile_result if isinstance(profile_result, ProfilePublic) else None,
        orders=orders_result if isinstance(orders_result, OrdersOverview) else None,
        missing=missing,
    )
