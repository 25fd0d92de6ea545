"""Who may see and act in the console: a signed session cookie, a login when the server has credentials, a CSRF
token on every state-changing form, and headers that keep the pages from running anything but our own scripts.

The session is Starlette's signed cookie (itsdangerous). Its key derives from the secret access key when there is
one (sessions survive a restart and work across servers sharing the secret; changing the secret logs everyone
out), else it is random per process.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request

COOKIE = "statemill_console"
# Our own scripts only (htmx and console.js): an injected <script> or on*= attribute would not run even if a value
# escaped escaping. htmx adds one <style> element for its request indicators, hence 'unsafe-inline' for styles.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class Forbidden(Exception):
    """A request the console refuses: its message says why and what to do."""

    status, title = 403, "Forbidden"


class TooLarge(Forbidden):
    status, title = 413, "Too large"


def session_key(credentials: tuple[str, str] | None) -> str:
    if credentials is None:
        return secrets.token_urlsafe(32)
    return hmac.new(credentials[1].encode(), b"statemill console session", hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    """This session's CSRF token (made on first use; the forms carry it as the ``csrf`` field)."""
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


def check_csrf(request: Request, form) -> None:
    expected = request.session.get("csrf")
    given = form.get("csrf")
    if not expected or not isinstance(given, str) or not hmac.compare_digest(expected, given):
        raise Forbidden("the form's CSRF token does not match this session (the page is stale, or the request came "
                        "from another site): reload the page and submit again")


def logged_in(request: Request, credentials: tuple[str, str] | None) -> bool:
    return credentials is None or request.session.get("user") == credentials[0]


def log_in(request: Request, credentials: tuple[str, str], key: str, secret: str) -> bool:
    """Check the access key id and secret; on success the session is renewed (a new CSRF token) and logged in."""
    ok = hmac.compare_digest(key.encode(), credentials[0].encode()) & \
        hmac.compare_digest(secret.encode(), credentials[1].encode())
    if ok:
        request.session.clear()
        request.session["user"] = credentials[0]
        csrf_token(request)
    return bool(ok)
