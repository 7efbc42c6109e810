"""The OAuth2 side of the emulator: Google's JWT-bearer token endpoint and the bearer check.

google-auth signs a JWT with the service account's key and posts it to the account's
``token_uri``; Google answers with an opaque access token that every FCM call then carries. The
emulator checks the assertion's shape, grant type and times (it cannot check the signature: it
does not know the developer's key) and issues tokens that it can verify without remembering them,
so a restarted emulator still accepts the tokens a running worker already holds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from urllib.parse import parse_qs

from aiohttp import web

from notifier.emulator.state import STATE_KEY, account_tag

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_LIFETIME_SECONDS = 3600
_CLOCK_SKEW_SECONDS = 300
_PREFIX = "ya29.emu."
# Not a secret: it only lets the emulator recognise its own tokens across restarts.
_SIGNING_KEY = b"notifier-fcm-emulator/access-tokens/v1"
_CACHE_LIMIT = 10_000


class InvalidGrant(ValueError):
    """The assertion is not one Google would accept; the message says why."""


def _b64url_json(segment: str) -> dict[str, object]:
    padded = segment + "=" * (-len(segment) % 4)
    try:
        value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise InvalidGrant("Invalid JWT: segment is not base64url-encoded JSON.") from exc
    if not isinstance(value, dict):
        raise InvalidGrant("Invalid JWT: segment is not a JSON object.")
    return value


def check_assertion(assertion: str, now: float | None = None) -> str:
    """Validate a service-account JWT assertion and return its issuer (the account's email)."""
    parts = assertion.split(".")
    if len(parts) != 3 or not all(parts):
        raise InvalidGrant("Invalid JWT: expected header.payload.signature.")
    header, claims = _b64url_json(parts[0]), _b64url_json(parts[1])
    if header.get("alg") != "RS256":
        raise InvalidGrant("Invalid JWT: the signing algorithm must be RS256.")
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise InvalidGrant("Invalid JWT: iss is required.")
    if not isinstance(claims.get("aud"), str):
        raise InvalidGrant("Invalid JWT: aud is required.")
    if not isinstance(claims.get("scope"), str) and not isinstance(
        claims.get("target_audience"), str
    ):
        raise InvalidGrant("Invalid JWT: scope is required.")
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int | float) or not isinstance(exp, int | float):
        raise InvalidGrant("Invalid JWT: iat and exp are required.")
    now = time.time() if now is None else now
    if exp < now - _CLOCK_SKEW_SECONDS or iat > now + _CLOCK_SKEW_SECONDS:
        raise InvalidGrant(
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
            "timeframe. Check your iat and exp values in the JWT claim."
        )
    if exp - iat > TOKEN_LIFETIME_SECONDS + 1:
        raise InvalidGrant("Invalid JWT: the assertion may be valid for at most 60 minutes.")
    return issuer


def _signature(body: str) -> str:
    return hmac.new(_SIGNING_KEY, body.encode(), hashlib.sha256).hexdigest()[:32]


def issue_access_token(now: float | None = None, account: str = "") -> tuple[str, int]:
    """A new opaque access token (for ``account``) and its lifetime in seconds."""
    expires = int((time.time() if now is None else now) + TOKEN_LIFETIME_SECONDS)
    body = f"{expires}.{secrets.token_urlsafe(12)}~{account_tag(account)}"
    return f"{_PREFIX}{body}.{_signature(body)}", TOKEN_LIFETIME_SECONDS


class AccessTokenChecker:
    """Verifies bearer tokens; remembers the ones it has verified so most checks are a lookup."""

    def __init__(self) -> None:
        self._valid: dict[str, tuple[int, str]] = {}

    def is_valid(
        self,
        authorization: str | None,
        now: float | None = None,
        revoked: frozenset[str] = frozenset(),
    ) -> bool:
        """Whether the bearer token is one of ours, unexpired, and not of a ``revoked`` account
        (tags from :func:`account_tag`)."""
        if not authorization or not authorization.startswith("Bearer "):
            return False
        token = authorization[7:].strip()
        now = time.time() if now is None else now
        known = self._valid.get(token)
        if known is None:
            known = self._verify(token)
            if known is None:
                return False
            if len(self._valid) >= _CACHE_LIMIT:
                self._valid.clear()
            self._valid[token] = known
        expires, tag = known
        return expires > now and not (revoked and tag in revoked)

    @staticmethod
    def _verify(token: str) -> tuple[int, str] | None:
        if not token.startswith(_PREFIX):
            return None
        body, _, signature = token[len(_PREFIX) :].rpartition(".")
        expires, _, nonce = body.partition(".")
        if not expires.isdigit() or not hmac.compare_digest(signature, _signature(body)):
            return None
        # Tokens issued before accounts were tagged have no tag: never revoked.
        return int(expires), nonce.partition("~")[2]


def _oauth_error(error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=400)


async def token_endpoint(request: web.Request) -> web.Response:
    """``POST /token``: exchange a JWT-bearer assertion for an access token, as Google does."""
    raw = await request.text()
    form = {key: values[0] for key, values in parse_qs(raw).items()}
    grant_type = form.get("grant_type")
    if grant_type != JWT_BEARER_GRANT:
        return _oauth_error("unsupported_grant_type", f"Invalid grant_type: {grant_type or ''}")
    try:
        account = check_assertion(form.get("assertion", ""))
    except InvalidGrant as exc:
        return _oauth_error("invalid_grant", str(exc))
    state = request.app[STATE_KEY]
    if account in state.revoked_accounts:
        # What Google answers once the service account's key was deleted or disabled.
        state.stats["tokens_refused"] += 1
        return _oauth_error("invalid_grant", "Invalid JWT Signature.")
    token, lifetime = issue_access_token(account=account)
    state.stats["tokens_issued"] += 1
    return web.json_response(
        {"access_token": token, "expires_in": lifetime, "token_type": "Bearer"}
    )
