"""Pagination as AWS does it: ``maxResults`` (0 or absent: 100, at most 1000) and an opaque ``nextToken``.

A token is the position after the last item returned (a key that later inserts never move), bound to the request
it continues, base64-encoded. A token that does not decode, belongs to another request (other arguments) or is
older than 24 hours is refused with InvalidToken, as AWS refuses it.
"""
from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any, Callable

from .protocol import ApiError, Call

DEFAULT_RESULTS = 100
MAX_RESULTS = 1000
TOKEN_LIFETIME = 24 * 3600  # seconds


def page_size(call: Call) -> int:
    size = call.get("maxResults", int, 0)
    if size < 0 or size > MAX_RESULTS:
        bound = "greater than or equal to 0" if size < 0 else f"less than or equal to {MAX_RESULTS}"
        raise ApiError("ValidationException", f"1 validation error detected: Value '{size}' at 'maxResults' failed "
                       f"to satisfy constraint: Member must have value {bound}")
    return size or DEFAULT_RESULTS


def _fingerprint(query: dict) -> str:
    return hashlib.sha256(json.dumps(query, sort_keys=True).encode()).hexdigest()[:16]


def encode_token(query: dict, after: Any) -> str:
    """The nextToken that continues ``query`` (the request's other arguments) after position ``after``."""
    # A JSON array, never an object: botocore's paginator reads a StartingToken that decodes to a JSON object as
    # its own token format (and sends its keys as parameters); an array makes it pass the token on unchanged.
    body = json.dumps([_fingerprint(query), after, int(time.time())], separators=(",", ":"))
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def decode_token(call: Call, query: dict, max_length: int) -> Any:
    """The position the request's nextToken continues from (None without one); InvalidToken when it is not one
    this server gave for the same arguments within the last 24 hours."""
    token = call.get("nextToken")
    if token is None:
        return None
    if len(token) > max_length:
        raise ApiError("ValidationException", f"1 validation error detected: Value at 'nextToken' failed to satisfy "
                       f"constraint: Member must have length less than or equal to {max_length}")
    try:
        found = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(found, list):
            raise ValueError(found)
        fingerprint, after, issued = found
    except (ValueError, TypeError):
        raise ApiError("InvalidToken", f"Invalid Token: '{token[:64]}' is not a nextToken this server gave; pass "
                       "the nextToken of the previous page unchanged") from None
    if fingerprint != _fingerprint(query):
        raise ApiError("InvalidToken", "Invalid Token: this nextToken belongs to a request with other arguments; "
                       "keep every other argument unchanged while paging")
    if time.time() - issued > TOKEN_LIFETIME:
        raise ApiError("InvalidToken", "Invalid Token: the nextToken has expired (after 24 hours); list again "
                       "from the first page")
    return after


def page(call: Call, query: dict, field: str, fetch: Callable[[Any, int], list], item: Callable[[Any], dict],
         key: Callable[[Any], Any], kind: type = str) -> dict:
    """One page of the listing ``query["a"]``: ``{field: [item(row)...], "nextToken": ...}``. ``fetch(after, n)`` returns at most n
    rows after position ``after`` (None: from the start); the token continues after ``key`` of the page's last row.
    A token whose position is not a ``kind`` is refused with InvalidToken."""
    size = page_size(call)
    after = decode_token(call, query, 1024)
    if after is not None and (not isinstance(after, kind) or isinstance(after, bool)):
        raise ApiError("InvalidToken", f"Invalid Token: this nextToken does not continue {query['a']}; pass "
                       "the nextToken of the previous page unchanged")
    rows = fetch(after, size + 1)
    answer = {field: [item(row) for row in rows[:size]]}
    if len(rows) > size:
        answer["nextToken"] = encode_token(query, key(rows[size - 1]))
    return answer

