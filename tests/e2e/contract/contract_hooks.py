"""schemathesis hooks for the contract tier (``SCHEMATHESIS_HOOKS=contract_hooks``).

One hook, ``filter_failure``, and it only ever lets through a refusal no schema can know of:
a request the document accepts, refused because of what the platform holds (an unknown or
retired product, mixed currencies, a stock at its ceiling, an Idempotency-Key used for other
data, a cursor it did not issue), what the caller knows (the current password, a password
that is too common or is the email), or whose credentials (OAuth2 ``invalid_grant`` and
``invalid_client`` at the token endpoint). Every other failure of every check stays one.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData

from shopstack_common.problems import STATE_DEPENDENT, VALIDATION

STATE_DEPENDENT_TYPES = frozenset(problem.type_uri for problem in STATE_DEPENDENT)
# Fields whose validity depends on the account, not on their shape.
ACCOUNT_DEPENDENT_FIELDS = frozenset({"current_password", "password"})
OAUTH_CREDENTIAL_ERRORS = frozenset({"invalid_grant", "invalid_client"})


def state_dependent(body: Any, status: int) -> bool:
    if not isinstance(body, dict):
        return False
    if status == 422 and body.get("type") in STATE_DEPENDENT_TYPES:
        return True
    if status == 422 and body.get("type") == VALIDATION.type_uri:
        fields = {str(error.get("field", "")).split(".")[-1] for error in body.get("errors", [])}
        return bool(fields) and fields <= ACCOUNT_DEPENDENT_FIELDS
    return status in (400, 401) and body.get("error") in OAUTH_CREDENTIAL_ERRORS


@schemathesis.hook
def filter_failure(
    _context: schemathesis.HookContext,
    failure: Any,
    _case: schemathesis.Case[Any],
    response: schemathesis.Response,
) -> bool:
    if not isinstance(failure, RejectedPositiveData):
        return True
    try:
        body = json.loads(response.content)
    except ValueError:
        return True
    return not state_dependent(body, response.status_code)
