"""Re-encryption after a key rotation: every stored secret sealed again with the first key, so
the old key can then be removed from secret_keys."""

from __future__ import annotations

from dataclasses import dataclass

from webhook_grpc.storage.ports import SealedSecrets, Storage

from .box import SecretBox

PAGE = 200


@dataclass(frozen=True)
class Reencrypted:
    resealed: int
    current: int
    """Already sealed with the first key."""
    changed_meanwhile: int
    """Rotated while this ran: the rotation sealed them with the first key itself."""


async def reencrypt_all(storage: Storage, box: SecretBox, page: int = PAGE) -> Reencrypted:
    """Seal every subscription's secrets with `box`'s first key. Raises SealedSecretError when a
    secret opens with none of the keys (nothing after it is changed)."""
    resealed = current = changed = 0
    after = ""
    while True:
        async with storage.read() as unit:
            rows = await unit.subscriptions.sealed_secrets_page(after, page)
        if not rows:
            return Reencrypted(resealed, current, changed)
        after = rows[-1].subscription_id
        updates = [(row, _resealed(box, row)) for row in rows]
        async with storage.transaction() as unit:
            for row, new in updates:
                if new == row:
                    current += 1
                elif await unit.subscriptions.replace_sealed(row, new):
                    resealed += 1
                else:
                    changed += 1


def _resealed(box: SecretBox, row: SealedSecrets) -> SealedSecrets:
    sid = row.subscription_id
    previous = row.previous_secret
    return SealedSecrets(
        sid, box.reseal(row.secret, sid), box.reseal(previous, sid) if previous else previous
    )
