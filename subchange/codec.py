"""Payload encryption: no personal data (emails, names, payment ids) in plaintext history.

Every payload a client or worker sends to Temporal (workflow and activity inputs and results,
queries, updates, summaries, failure details) is sealed with AES-256-GCM under a key from
PAYLOAD_KEYS, and carries the key's id so keys can rotate: the first key seals, every listed key
opens. Failure messages travel as encoded attributes, so they are sealed too. Without
PAYLOAD_KEYS payloads are plain JSON (the embedded default for development).
"""

from __future__ import annotations

import base64
import dataclasses
import os
from collections.abc import Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"


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
    """A fresh PAYLOAD_KEYS entry (python -m subchange.codec_server --new-key ID prints one)."""
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        self.active_id = keys[0][0]
        self.ciphers = {key_id: AESGCM(key) for key_id, key in keys}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        cipher = self.ciphers[self.active_id]
        sealed = []
        for payload in payloads:
            nonce = os.urandom(12)
            data = nonce + cipher.encrypt(nonce, payload.SerializeToString(),
                                          self.active_id.encode())
            sealed.append(Payload(metadata={"encoding": ENCODING,
                                            KEY_ID: self.active_id.encode()}, data=data))
        return sealed

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        opened = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                opened.append(payload)  # written before encryption was turned on
                continue
            key_id = payload.metadata.get(KEY_ID, b"").decode()
            cipher = self.ciphers.get(key_id)
            if cipher is None:
                raise ValueError(f"payload sealed with unknown key id {key_id!r}: add it to "
                                 "PAYLOAD_KEYS")
            plain = cipher.decrypt(payload.data[:12], payload.data[12:], key_id.encode())
            opened.append(Payload.FromString(plain))
        return opened


def data_converter(payload_keys: str) -> DataConverter:
    """The converter of every client and worker: pydantic JSON, sealed when keys are set."""
    if not payload_keys:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter, payload_codec=EncryptionCodec(parse_keys(payload_keys)),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes)
