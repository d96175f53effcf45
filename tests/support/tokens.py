"""One set of bearer tokens for the tests: a publisher, tenants acme and globex, an admin."""

from __future__ import annotations

from typing import Any

from tests.support.rpc import metadata
from tests.support.server import token_hash

PUBLISHER_TOKEN, ACME_TOKEN, GLOBEX_TOKEN, ADMIN_TOKEN = "publisher", "acme", "globex", "admin"

# As the server's `tokens` setting takes them: by SHA-256, never the token itself.
TOKENS: list[dict[str, Any]] = [
    {"role": "publisher", "sha256": token_hash(PUBLISHER_TOKEN)},
    {"role": "tenant", "tenant": "acme", "sha256": token_hash(ACME_TOKEN)},
    {"role": "tenant", "tenant": "globex", "sha256": token_hash(GLOBEX_TOKEN)},
    {"role": "admin", "sha256": token_hash(ADMIN_TOKEN)},
]

# Call metadata of each caller.
PUBLISHER, ACME, GLOBEX, ADMIN = (
    metadata(PUBLISHER_TOKEN),
    metadata(ACME_TOKEN),
    metadata(GLOBEX_TOKEN),
    metadata(ADMIN_TOKEN),
)
