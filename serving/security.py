"""API keys with names: who called, checked in constant time; the name (never the key) goes to logs and records.

TRIAGE_API_KEYS accepts `name1:key1,name2:key2`, a JSON object `{"name1": "key1"}`, or plain keys `key1,key2`
(named by `triage.settings.api_key_id`: `key-<first 12 hex of the key's SHA-256>`, so a log and the decision log
can tell them apart without holding them).
Keys are read from `X-API-Key`, `Authorization: Bearer <key>`, or `Authorization: Basic` with the key as the
password (what Label Studio's ML-backend connection sends).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass

from pydantic import SecretStr

from triage.settings import Settings


@dataclass(frozen=True)
class NamedKey:
    """One accepted key and the name it is known by."""

    name: str
    secret: SecretStr


def named_keys(settings: Settings) -> list[NamedKey]:
    """The configured keys with their names (see the module docstring for the accepted forms)."""
    return [NamedKey(name, key) for name, key in settings.named_api_keys()]


def given_key(x_api_key: str | None, authorization: str | None) -> str | None:
    """The key a request carries, from whichever header it used."""
    if x_api_key:
        return x_api_key
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


def match(keys: list[NamedKey], given: str) -> str | None:
    """The name of the key `given` equals, or None; every key is compared, in constant time."""
    found = None
    raw = given.encode("utf-8", "surrogateescape")
    for k in keys:
        if hmac.compare_digest(raw, k.secret.get_secret_value().encode()):
            found = k.name
    return found
