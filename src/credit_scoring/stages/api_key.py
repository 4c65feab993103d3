"""API keys of the service (`credit-scoring api-key`): not a pipeline stage, an admin task.

The token is returned to be printed once; the keys file keeps only its salted hash
(:mod:`credit_scoring.serving.auth`).
"""

from __future__ import annotations

from pathlib import Path

from credit_scoring.serving.auth import mint_key, revoke_key


def mint(client_id: str, keys_file: Path) -> tuple[str, dict[str, str]]:
    """A new token for ``client_id`` and its stored (hashed) record."""
    return mint_key(client_id, keys_file)


def revoke(key_id: str, keys_file: Path) -> bool:
    """Remove a key; False if it was not there."""
    return revoke_key(key_id, keys_file)
