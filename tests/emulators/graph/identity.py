"""The Microsoft identity platform as msal meets it: instance discovery, the tenant's
OpenID configuration, and the v2.0 token endpoint for client credentials."""

from __future__ import annotations

import itertools
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import orjson
from cryptography import x509

from tests.emulators.graph.state import AppRegistration

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
GRAPH_RESOURCE = "https://graph.microsoft.com"


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, **headers: str) -> Reply:
        return cls(status, orjson.dumps(payload), {"Content-Type": "application/json"} | headers)


def aadsts(status: int, error: str, code: int, description: str) -> Reply:
    """An error as login.microsoftonline.com words it (AADSTS code, trace and correlation ids)."""
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    text = (
        f"AADSTS{code}: {description}\r\nTrace ID: {trace}\r\n"
        f"Correlation ID: {correlation}\r\nTimestamp: {stamp}"
    )
    return Reply.json(
        status,
        {
            "error": error,
            "error_description": text,
            "error_codes": [code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"https://login.microsoftonline.com/error?code={code}",
        },
    )


@dataclass
class Identity:
    """Issues HS256-signed access tokens whose ``roles`` claim carries the app's permissions."""

    app: AppRegistration
    token_lifetime: int = 3599
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    serial: itertools.count[int] = field(default_factory=itertools.count)
    #: tokens with a serial below this are refused as expired (``expire_tokens``)
    valid_from: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def expire_tokens(self) -> None:
        with self.lock:
            self.valid_from = next(self.serial) + 1

    def instance_discovery(self, origin: str, query: dict[str, str]) -> Reply:
        endpoint = query.get("authorization_endpoint", "")
        tenant = urlsplit(endpoint).path.strip("/").split("/")[0] or "common"
        host = urlsplit(origin).netloc
        return Reply.json(
            200,
            {
                "tenant_discovery_endpoint": (
                    f"{origin}/{tenant}/v2.0/.well-known/openid-configuration"
                ),
                "api-version": "1.1",
                "metadata": [
                    {"preferred_network": host, "preferred_cache": host, "aliases": [host]}
                ],
            },
        )

    def openid_configuration(self, origin: str, tenant: str) -> Reply:
        if tenant not in (self.app.tenant_id, "organizations", "common"):
            return aadsts(
                400,
                "invalid_tenant",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
                "and are signing into the correct cloud.",
            )
        base = f"{origin}/{self.app.tenant_id}"
        return Reply.json(
            200,
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "issuer": f"{origin}/{self.app.tenant_id}/v2.0",
                "jwks_uri": f"{origin}/{self.app.tenant_id}/discovery/v2.0/keys",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
            },
        )

    def token(self, origin: str, tenant: str, body: bytes) -> Reply:
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if tenant != self.app.tenant_id:
            return aadsts(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            return aadsts(
                400,
                "unsupported_grant_type",
                70003,
                "The app requested an unsupported grant type; use client_credentials.",
            )
        client = form.get("client_id", "")
        if client != self.app.client_id:
            return aadsts(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client}' was not found in the directory "
                f"'{tenant}'. This can happen if the application has not been installed by the "
                "administrator of the tenant.",
            )
        refused = self._check_credential(form, f"{origin}/{tenant}/oauth2/v2.0/token")
        if refused is not None:
            return refused
        scope = form.get("scope", "")
        if scope not in (f"{GRAPH_RESOURCE}/.default", f"{origin}/.default"):
            return aadsts(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential flows must "
                "have a scope value with /.default suffixed to the resource identifier "
                "(application ID URI).",
            )
        return Reply.json(
            200,
            {
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
                "ext_expires_in": self.token_lifetime,
                "access_token": self._issue(origin),
            },
        )

    def _check_credential(self, form: dict[str, str], audience: str) -> Reply | None:
        if "client_secret" in form:
            if secrets.compare_digest(form["client_secret"], self.app.client_secret):
                return None
            return aadsts(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                "the client secret value, not the client secret ID, for a secret added to app "
                f"'{self.app.client_id}'.",
            )
        if form.get("client_assertion_type") == ASSERTION_TYPE and self.app.certificate_pem:
            certificate = x509.load_pem_x509_certificate(self.app.certificate_pem.encode())
            try:
                jwt.decode(
                    form.get("client_assertion", ""),
                    certificate.public_key(),  # type: ignore[arg-type]
                    algorithms=["RS256", "PS256"],
                    audience=audience,
                    issuer=self.app.client_id,
                )
            except jwt.PyJWTError:
                return aadsts(
                    401, "invalid_client", 700027, "Client assertion failed signature validation."
                )
            return None
        return aadsts(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or "
            "'client_secret'.",
        )

    def _issue(self, origin: str) -> str:
        now = int(time.time())
        with self.lock:
            serial = next(self.serial)
        claims = {
            "aud": GRAPH_RESOURCE,
            "iss": f"https://sts.windows.net/{self.app.tenant_id}/",
            "iat": now,
            "nbf": now,
            "exp": now + self.token_lifetime,
            "appid": self.app.client_id,
            "tid": self.app.tenant_id,
            "idtyp": "app",
            "roles": sorted(self.app.roles),
            "jti": str(serial),
        }
        return jwt.encode(claims, self.key, algorithm="HS256")

    def verify(self, authorization: str | None) -> tuple[frozenset[str] | None, str]:
        """The token's roles, or None and Graph's reason for refusing it."""
        if not authorization or not authorization.lower().startswith("bearer "):
            return None, "Access token is empty."
        try:
            claims = jwt.decode(
                authorization[7:], self.key, algorithms=["HS256"], audience=GRAPH_RESOURCE
            )
        except jwt.ExpiredSignatureError:
            return None, "Lifetime validation failed, the token is expired."
        except jwt.PyJWTError:
            return None, "IDX14100: JWT is not well formed."
        if int(claims["jti"]) < self.valid_from:
            return None, "Lifetime validation failed, the token is expired."
        return frozenset(claims["roles"]), ""
