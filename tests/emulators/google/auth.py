"""OAuth 2.0 for service accounts with domain-wide delegation, as Google's token endpoint does it.

The client posts ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` with
an RS256-signed JWT (``iss`` the service account, ``sub`` the user to act as,
``scope``, ``aud`` the token URI, ``iat``/``exp`` at most an hour apart). The
emulator checks the signature against the registered public key, that ``sub``
is an active user of the domain and that the client id was granted every
requested scope in the Admin console; then it hands out an opaque bearer token.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.emulators.google.org import Org

SCOPE_PREFIX = "https://www.googleapis.com/auth/"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_LIFETIME = 3600
#: the audience Google's own token endpoint accepts (google-auth always signs for it)
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"


class TokenError(Exception):
    """An OAuth error response: ``{"error", "error_description"}`` with its status."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


@dataclass
class ServiceAccount:
    client_email: str
    client_id: str
    #: key id → public key, as uploaded to the Cloud console
    keys: dict[str, rsa.RSAPublicKey] = field(default_factory=dict)


@dataclass(frozen=True)
class Grant:
    """What one access token stands for."""

    client_id: str
    subject: str | None
    scopes: frozenset[str]
    expires_at: float


@dataclass
class Authority:
    """Service accounts, their domain-wide delegation grants and the tokens handed out."""

    org: Org
    accounts: dict[str, ServiceAccount] = field(default_factory=dict)
    #: client id → scopes granted in the Admin console (domain-wide delegation)
    delegation: dict[str, set[str]] = field(default_factory=dict)
    tokens: dict[str, Grant] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def register(
        self,
        client_email: str,
        client_id: str,
        key_id: str,
        public_key_pem: bytes,
        *,
        scopes: set[str],
    ) -> None:
        key = serialization.load_pem_public_key(public_key_pem)
        assert isinstance(key, rsa.RSAPublicKey)
        with self.lock:
            account = self.accounts.setdefault(
                client_email, ServiceAccount(client_email, client_id)
            )
            account.keys[key_id] = key
            self.delegation[client_id] = {_full(s) for s in scopes}

    def revoke(self, client_id: str, scope: str) -> None:
        """Remove one scope from the client's domain-wide delegation (tokens already out stay)."""
        with self.lock:
            self.delegation.get(client_id, set()).discard(_full(scope))

    def expire_tokens(self) -> None:
        """Every token handed out so far is now expired (the next API call gets a 401)."""
        with self.lock:
            self.tokens.clear()

    def grant(self, form: dict[str, str], *, audience: str) -> dict[str, Any]:
        """Answer a token request, or raise :class:`TokenError` as Google would."""
        if form.get("grant_type") != JWT_BEARER:
            raise TokenError(400, "unsupported_grant_type", "Invalid grant_type: ")
        claims = self._verified_claims(form.get("assertion", ""), audience=audience)
        account = self.accounts[claims["iss"]]
        scopes = frozenset(str(claims.get("scope", "")).split())
        if not scopes:
            raise TokenError(
                400, "invalid_scope", "Invalid OAuth scope or ID token audience provided."
            )
        subject = claims.get("sub")
        if subject is not None:
            self._check_subject(str(subject).lower(), account.client_id, scopes)
        token = "ya29.emu-" + secrets.token_urlsafe(24)
        grant = Grant(
            account.client_id,
            subject and str(subject).lower(),
            scopes,
            time.time() + TOKEN_LIFETIME,
        )
        with self.lock:
            self.tokens[token] = grant
        return {"access_token": token, "expires_in": TOKEN_LIFETIME - 1, "token_type": "Bearer"}

    def _check_subject(self, subject: str, client_id: str, scopes: frozenset[str]) -> None:
        user = self.org.users.get(subject)
        if user is None or user.suspended:
            raise TokenError(400, "invalid_grant", "Invalid email or User ID")
        if not scopes <= self.delegation.get(client_id, set()):
            raise TokenError(
                401,
                "unauthorized_client",
                "Client is unauthorized to retrieve access tokens using this method, "
                "or client not authorized for any of the scopes requested.",
            )

    def _verified_claims(self, assertion: str, *, audience: str) -> dict[str, Any]:
        try:
            head_b64, body_b64, signature_b64 = assertion.split(".")
            header = json.loads(_unb64(head_b64))
            claims: dict[str, Any] = json.loads(_unb64(body_b64))
            signature = _unb64(signature_b64)
        except (ValueError, json.JSONDecodeError):
            raise TokenError(400, "invalid_request", "Invalid JWT.") from None
        account = self.accounts.get(str(claims.get("iss")))
        if account is None:
            raise TokenError(401, "invalid_client", "The OAuth client was not found.")
        key = account.keys.get(str(header.get("kid")))
        if header.get("alg") != "RS256" or key is None:
            raise TokenError(400, "invalid_grant", "Invalid JWT Signature.")
        try:
            key.verify(
                signature, f"{head_b64}.{body_b64}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            raise TokenError(400, "invalid_grant", "Invalid JWT Signature.") from None
        now = time.time()
        iat, exp = float(claims.get("iat", 0)), float(claims.get("exp", 0))
        if claims.get("aud") not in (audience, GOOGLE_TOKEN_AUDIENCE):
            raise TokenError(400, "invalid_grant", "Invalid JWT: Failed audience check.")
        if not (iat - 300 <= now < exp and exp - iat <= TOKEN_LIFETIME):
            raise TokenError(
                400,
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                "reasonable timeframe. Check your iat and exp values in the JWT claim.",
            )
        return claims

    def lookup(self, authorization: str | None) -> Grant | None:
        """The grant behind a ``Bearer`` header, if it is known and not expired."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        with self.lock:
            grant = self.tokens.get(authorization.removeprefix("Bearer ").strip())
        if grant is None or grant.expires_at <= time.time():
            return None
        return grant


def _full(scope: str) -> str:
    return scope if scope.startswith("https://") else SCOPE_PREFIX + scope


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@cache
def method_scopes(document: str, method_id: str) -> frozenset[str]:
    """The scopes Google's own discovery document accepts for one method."""
    source = resources.files("googleapiclient") / "discovery_cache" / "documents" / document
    root = json.loads(source.read_text(encoding="utf-8"))
    stack = [root]
    while stack:
        node = stack.pop()
        for method in node.get("methods", {}).values():
            if method["id"] == method_id:
                return frozenset(method.get("scopes", ()))
        stack.extend(node.get("resources", {}).values())
    raise KeyError(method_id)
