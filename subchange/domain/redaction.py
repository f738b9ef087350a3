"""Email addresses taken out of text that may reach a log line: a mail server's reply (servers
name the recipient they refuse: "550 5.1.1 <billing@acme.example>: Recipient address rejected"),
and, in the worker, every line it writes (subchange.app.logs).

An address is a mailbox name, `@` and a domain of at least two labels whose last one starts
with a letter, in any script (`請求@例え.jp` too); `postgres@127.0.0.1` is a user at a host, not
an address, and is kept.
"""

from __future__ import annotations

import re

ADDRESS = re.compile(
    r"[\w.!#$%&'*+/=?^`~-]+"  # the mailbox name (\w: letters and digits of any script)
    r"@(?:[\w-]+\.)+[^\W\d_][\w-]*")  # the domain: labels, the last one starting with a letter
HIDDEN = "[address]"


def without_addresses(text: str) -> str:
    return ADDRESS.sub(HIDDEN, text)
