"""How the mail platform's endpoints are told (DOMAIN.md "What the mail platform is told"): who
they are, and the retry rule. An endpoint that does not answer is retried with a backoff that
doubles up to a ceiling; after three days of failures it is `failing` (an alert fires) and is
still tried at the ceiling's pace, so that when it answers again it gets every org's current
version: nothing is lost."""

import base64
import binascii
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlparse

from domain.errors import InvalidInput

SECRET_PREFIX = "whsec_"
DEFAULT_ENDPOINT = "default"


class EndpointState(StrEnum):
    HEALTHY = "healthy"
    RETRYING = "retrying"   # failing for less than `failing_after`
    FAILING = "failing"


@dataclass(frozen=True)
class Endpoint:
    name: str
    url: str
    # Every secret valid now: two while one is rotated, each signing the message (Standard Webhooks).
    secrets: tuple[str, ...]


@dataclass(frozen=True)
class Retry:
    first: timedelta = timedelta(seconds=5)
    longest: timedelta = timedelta(hours=1)
    failing_after: timedelta = timedelta(days=3)

    def next_attempt(self, failed_in_a_row: int, now: datetime) -> datetime:
        """When to try again after the `failed_in_a_row`-th failure in a row (1 for the first)."""
        wait = self.first * (2 ** min(max(failed_in_a_row - 1, 0), 30))
        return now + min(wait, self.longest)

    def state(self, failing_since: datetime | None, now: datetime) -> EndpointState:
        if failing_since is None:
            return EndpointState.HEALTHY
        return EndpointState.FAILING if now - failing_since >= self.failing_after else EndpointState.RETRYING


@dataclass(frozen=True)
class Webhooks:
    """Where and how entitlements are delivered. No endpoint: nothing is delivered (versions are
    still kept, and read over the API and the CLI)."""
    endpoints: tuple[Endpoint, ...] = ()
    retry: Retry = field(default_factory=Retry)
    timeout_seconds: float = 10.0
    batch: int = 100          # orgs read per round
    concurrency: int = 16     # requests in flight per endpoint

    def endpoint(self, name: str) -> Endpoint:
        for endpoint in self.endpoints:
            if endpoint.name == name:
                return endpoint
        raise InvalidInput(f"no webhook endpoint named {name!r}; endpoints: "
                           f"{', '.join(e.name for e in self.endpoints) or 'none configured'}")


def check_secret(secret: str, where: str) -> str:
    secret = secret.strip()
    if not secret.startswith(SECRET_PREFIX):
        raise InvalidInput(f"{where}: a webhook secret starts with {SECRET_PREFIX!r} (Standard Webhooks)")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX):] + "==", validate=True)
    except binascii.Error:
        raise InvalidInput(f"{where}: the part after {SECRET_PREFIX!r} must be base64") from None
    if len(key) < 16:
        raise InvalidInput(f"{where}: the key must be at least 16 bytes (24 base64 characters)")
    return secret


def check_url(url: str, where: str) -> str:
    parsed = urlparse(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InvalidInput(f"{where}: must be an http:// or https:// URL, got {url!r}")
    return url.strip()


def endpoint(name: str, url: str, secrets: list[str] | tuple[str, ...], where: str) -> Endpoint:
    if not name or len(name) > 100:
        raise InvalidInput(f"{where}.name: 1 to 100 characters")
    if not 1 <= len(secrets) <= 2:
        raise InvalidInput(f"{where}.secrets: one secret, or two while one is rotated")
    return Endpoint(name, check_url(url, f"{where}.url"),
                    tuple(check_secret(s, f"{where}.secrets[{i}]") for i, s in enumerate(secrets)))


def endpoints_from(raw: Any, where: str) -> list[Endpoint]:
    """The endpoints file: `endpoints: [{name, url, secrets: [whsec_..., ...]}]`."""
    items = raw.get("endpoints") if isinstance(raw, dict) else None
    if not isinstance(items, list):
        raise InvalidInput(f"{where}: must hold `endpoints:`, a list of {{name, url, secrets}}")
    found: list[Endpoint] = []
    for index, item in enumerate(items):
        at = f"{where}: endpoints[{index}]"
        if not isinstance(item, dict):
            raise InvalidInput(f"{at}: must be a mapping with name, url and secrets")
        secrets = item.get("secrets")
        if isinstance(secrets, str):
            secrets = [secrets]
        if not isinstance(secrets, list):
            raise InvalidInput(f"{at}.secrets: a list of one or two whsec_ secrets")
        found.append(endpoint(str(item.get("name") or ""), str(item.get("url") or ""), secrets, at))
    names = [e.name for e in found]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise InvalidInput(f"{where}: two endpoints named {duplicate!r}")
    return found
