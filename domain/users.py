"""Which users an org has, as a validator can ask without a database: "is x@acme.test a user?".

The workflow keeps a `Roster` so that a request naming an unknown user (a usage report, a
storage allocation) or an existing one (adding a user twice) is refused in the Update's
validator, before it reaches the history. A roster holds an 8-byte digest per address, not the
address: a 200,000-user org fits in 1.6 MB, under Temporal's 2 MB payload limit, however long
the addresses. Two addresses share a digest with odds of one in 10**8 at that size; the
decision then still checks the database, so a false match costs a late refusal, never a wrong
change."""

import base64
import hashlib
from dataclasses import dataclass
from typing import Iterable, Protocol

from domain.errors import InvalidInput

DIGEST_BYTES = 8


class Members(Protocol):
    def has(self, email: str) -> bool: ...

    def unknown(self, emails: list[str]) -> list[str]:
        """Those of `emails` that are not users, in order (one question for a whole usage file)."""
        ...


def _digest(email: str) -> bytes:
    return hashlib.blake2b(email.strip().lower().encode("utf-8"), digest_size=DIGEST_BYTES).digest()


@dataclass
class Roster:
    """The digests of an org's users' addresses. Packed (base64) when it crosses Temporal."""
    digests: set[bytes]

    @staticmethod
    def of(emails: Iterable[str]) -> "Roster":
        return Roster({_digest(email) for email in emails})

    @staticmethod
    def unpack(packed: str) -> "Roster":
        raw = base64.b64decode(packed)
        return Roster({raw[i:i + DIGEST_BYTES] for i in range(0, len(raw), DIGEST_BYTES)})

    def pack(self) -> str:
        return base64.b64encode(b"".join(sorted(self.digests))).decode("ascii")

    def has(self, email: str) -> bool:
        return _digest(email) in self.digests

    def unknown(self, emails: list[str]) -> list[str]:
        return [email for email in emails if _digest(email) not in self.digests]

    def add(self, email: str) -> None:
        self.digests.add(_digest(email))


def check_member(members: Members, email: str, field: str, org_id: str) -> None:
    if not members.has(email):
        raise InvalidInput(f"{field}: no user {email.strip().lower()} in org {org_id}")


def check_members(members: Members, emails: list[str], field: str, org_id: str) -> None:
    """Every one of `emails` a user; `field` names a row by its index: "rows[{}]: user"."""
    missing = members.unknown(emails)
    if missing:
        index = emails.index(missing[0])
        raise InvalidInput(f"{field.format(index)}: no user {missing[0].strip().lower()} in org {org_id}")


def check_not_member(members: Members, email: str, field: str, org_id: str) -> None:
    if members.has(email):
        raise InvalidInput(f"{field}: {email.strip().lower()} is already a user of {org_id}")
