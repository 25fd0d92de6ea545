"""AWS Signature Version 4 checks, with botocore's own signer: the request is rebuilt from what the client signed
(method, URL, the headers SignedHeaders names, body, X-Amz-Date) and its signature recomputed and compared in
constant time. Error types, messages and HTTP statuses are those AWS answers.
"""
from __future__ import annotations

import hmac
import re
import time
from datetime import datetime, timezone

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from starlette.requests import Request

from .protocol import ApiError

SKEW = 5 * 60  # seconds AWS allows between X-Amz-Date and its clock, either way
SERVICE = "states"
_AUTHORIZATION = re.compile(r"^AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/"
                            r"(?P<service>[^/,\s]+)/aws4_request,\s*SignedHeaders=(?P<headers>[a-z0-9;_.-]+),\s*"
                            r"Signature=(?P<signature>[0-9a-f]{64})$")
_STAMP = "%Y%m%dT%H%M%SZ"
_WRONG_SIGNATURE = ("The request signature we calculated does not match the signature you provided. Check your "
                    "AWS Secret Access Key and signing method. Consult the service documentation for details.")


def verify(request: Request, body: bytes, credentials: tuple[str, str], now: float | None = None) -> None:
    """Raise the ApiError AWS would answer unless ``request`` is signed with ``credentials`` (key id, secret)."""
    header = request.headers.get("authorization")
    if not header:
        raise ApiError("MissingAuthenticationToken", "Missing Authentication Token", 403)
    found = _AUTHORIZATION.match(header.strip())
    if found is None:
        raise ApiError("IncompleteSignatureException", "The Authorization header is not an AWS4-HMAC-SHA256 "
                       "signature with Credential, SignedHeaders and Signature", 400)
    key, secret = credentials
    if not hmac.compare_digest(found["key"].encode(), key.encode()):
        raise ApiError("UnrecognizedClientException", "The security token included in the request is invalid.", 400)
    if found["service"] != SERVICE:
        raise ApiError("InvalidSignatureException", f"Credential should be scoped to correct service: '{SERVICE}'.")
    stamp = request.headers.get("x-amz-date", "")
    signed = found["headers"].split(";")
    if "x-amz-date" not in signed or not stamp.startswith(found["date"]):
        raise ApiError("IncompleteSignatureException", "X-Amz-Date must be signed and fall on the Credential's date",
                       400)
    _check_time(stamp, time.time() if now is None else now)
    signer = SigV4Auth(Credentials(key, secret), SERVICE, found["region"])
    rebuilt = AWSRequest(method=request.method, url=_url(request),
                         headers={name: request.headers.get(name, "") for name in signed}, data=body)
    rebuilt.context["timestamp"] = stamp
    expected = signer.signature(signer.string_to_sign(rebuilt, signer.canonical_request(rebuilt)), rebuilt)
    if not hmac.compare_digest(expected.encode(), found["signature"].encode()):
        raise ApiError("InvalidSignatureException", _WRONG_SIGNATURE)


def _url(request: Request) -> str:
    """The URL as the client addressed it (the Host it signed; path and query as sent)."""
    query = request.url.query
    return f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}{request.url.path}" + \
        (f"?{query}" if query else "")


def _check_time(stamp: str, now: float) -> None:
    """InvalidSignatureException with AWS's wording when X-Amz-Date is more than SKEW from ``now``."""
    try:
        signed_at = datetime.strptime(stamp, _STAMP).replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        raise ApiError("IncompleteSignatureException", f"X-Amz-Date {stamp!r} is not a basic ISO 8601 date-time "
                       "(YYYYMMDDTHHMMSSZ)", 400) from None

    def show(t: float) -> str:
        return datetime.fromtimestamp(t, timezone.utc).strftime(_STAMP)
    if signed_at < now - SKEW:
        raise ApiError("InvalidSignatureException", f"Signature expired: {stamp} is now earlier than "
                       f"{show(now - SKEW)} ({show(now)} - 5 min.)")
    if signed_at > now + SKEW:
        raise ApiError("InvalidSignatureException", f"Signature not yet current: {stamp} is still later than "
                       f"{show(now + SKEW)} ({show(now)} + 5 min.)")
