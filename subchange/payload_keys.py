"""The PAYLOAD_KEYS format, `id:base64key,id2:base64key`: parsed for the settings and the codec,
and fresh entries made for the embedded stack and `codec_server --new-key`."""

from __future__ import annotations

import base64
import os


def parse_keys(setting: str) -> list[tuple[str, bytes]]:
    """`id:base64key,id2:base64key` → [(id, 32-byte key)]; raises ValueError naming the entry."""
    keys = []
    for number, entry in enumerate(e.strip() for e in setting.split(",") if e.strip()):
        key_id, sep, encoded = entry.partition(":")
        if not sep or not key_id:
            raise ValueError(f"entry {number + 1} must be KEY_ID:BASE64_KEY")
        try:
            key = base64.b64decode(encoded, validate=True)
        except ValueError:
            raise ValueError(f"key {key_id!r} is not base64") from None
        if len(key) != 32:
            raise ValueError(f"key {key_id!r} must be 32 bytes (AES-256), not {len(key)}")
        keys.append((key_id, key))
    if len({key_id for key_id, _ in keys}) != len(keys):
        raise ValueError("key ids must be unique")
    return keys


def new_key_setting(key_id: str) -> str:
    """A fresh PAYLOAD_KEYS entry (python -m subchange.app.codec_server --new-key ID prints one)."""
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"
