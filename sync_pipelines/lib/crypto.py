"""Secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) with a key from SYNC_SECRET_KEY or, in local mode only, a
0600 key file generated on first use (lib/modes.py)."""

from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from sync_pipelines.lib.db import ConfigError, sync_home


def key_file() -> Path:
    return sync_home() / "secret.key"


@cache
def _fernet(key_source: str) -> Fernet:
    if key_source.startswith("env:"):
        key = key_source[4:].encode()
    else:
        path = Path(key_source)
        if not path.exists():
            _refuse_generated_key()
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(Fernet.generate_key())
        key = path.read_bytes().strip()
    try:
        return Fernet(key)
    except ValueError:
        raise ConfigError(
            "SYNC_SECRET_KEY: expected a Fernet key (32 url-safe base64-encoded bytes), "
            "e.g. from `python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
        ) from None


def _refuse_generated_key() -> None:
    # A key generated per process (per container, each with its own SYNC_HOME) encrypts credentials that no other
    # process can read back.
    from sync_pipelines.lib import modes

    if modes.is_production():
        raise ConfigError(
            f"{modes.MODE_ENV}=production: SYNC_SECRET_KEY is not set, and production never generates a key; set "
            "the same Fernet key in every process"
        )


def fernet() -> Fernet:
    configured = os.environ.get("SYNC_SECRET_KEY", "").strip()
    if not configured:
        _refuse_generated_key()
    return _fernet(f"env:{configured}" if configured else str(key_file()))


def encrypt(secret: str) -> bytes:
    return fernet().encrypt(secret.encode())


def decrypt(token: bytes) -> str:
    try:
        return fernet().decrypt(bytes(token)).decode()
    except InvalidToken:
        raise ConfigError(
            "a stored credential cannot be decrypted with the current key: SYNC_SECRET_KEY (or "
            f"{key_file()}) differs from the key it was stored with"
        ) from None


def fingerprint(secret: str) -> str:
    """Enough to tell two secrets apart in a listing, never enough to recover one."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:12]
