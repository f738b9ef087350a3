"""Payload encryption: no personal data (emails, names, payment ids) in plaintext history.

Every payload a client or worker sends to Temporal (workflow and activity inputs and results,
queries, updates, summaries, failure details) is sealed with AES-256-GCM under a key from
PAYLOAD_KEYS, and carries the key's id so keys can rotate: the first key seals, every listed key
opens. Failure messages travel as encoded attributes, so they are sealed too. Without
PAYLOAD_KEYS payloads are plain JSON (the embedded default for development).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

from subchange.payload_keys import parse_keys

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"


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
            try:
                plain = cipher.decrypt(payload.data[:12], payload.data[12:], key_id.encode())
            except InvalidTag:
                raise ValueError(f"a payload sealed with key id {key_id!r} could not be opened: "
                                 "it was altered, or sealed by another key of that id") from None
            opened.append(Payload.FromString(plain))
        return opened


def data_converter(payload_keys: str) -> DataConverter:
    """The converter of every client and worker: pydantic JSON, sealed when keys are set."""
    if not payload_keys:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter, payload_codec=EncryptionCodec(parse_keys(payload_keys)),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes)
