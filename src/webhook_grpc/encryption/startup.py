"""Start-up check: every stored secret names a configured key, so a wrong or missing key stops
the service at once with one clear line instead of failing every delivery later."""

from __future__ import annotations

from webhook_grpc.storage.ports import Storage

from .box import SecretBox, sealed_key_id
from .keys import SecretKeyError


async def check_keys_open_secrets(storage: Storage, box: SecretBox) -> None:
    """Raise SecretKeyError when the database holds secrets no configured key can open."""
    async with storage.read() as unit:
        heads = await unit.subscriptions.sealed_key_heads()
    key_ids = {sealed_key_id(head) for head in heads}
    if None in key_ids:
        raise SecretKeyError(
            "the database holds plain-text subscription secrets: run `webhook-grpc migrate` "
            "(it encrypts them with the first of secret_keys)"
        )
    unknown = sorted(kid for kid in key_ids if kid is not None and kid not in box.key_ids)
    if unknown:
        raise SecretKeyError(
            f"wrong secret key: subscription secrets are encrypted with key id(s) "
            f"{', '.join(unknown)}, but the configured secret_keys have id(s) "
            f"{', '.join(box.key_ids)}; configure the key they were encrypted with "
            "(keep the old key in secret_keys until `webhook-grpc secrets re-encrypt` has run)"
        )
