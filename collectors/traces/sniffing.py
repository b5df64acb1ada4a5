"""What each format's ``sniff`` shares: confidence levels and a view of a head as JSON text.

Every trace format owns a ``sniff(head) -> int`` that says how sure it is that ``head`` (the
first bytes of a decompressed input) is its format; detection picks the surest. JSON formats
only ever look at text: a head with control bytes that JSON never contains outside strings is
binary (protobuf) whatever its first printable byte looks like.
"""

from __future__ import annotations

import re

#: How sure a sniffer is. Detection takes the highest; ties go to the format listed first.
NO, WEAK, LIKELY, SURE = 0, 25, 50, 100

#: Bytes of the head that JSON sniffers search for their keys.
WINDOW = 8192

_BOM = b"\xef\xbb\xbf"
_WHITESPACE = b" \t\r\n"
# JSON text never holds these bytes raw (control characters must be escaped inside strings).
_BINARY = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_FIRST_KEY = re.compile(rb'^\{\s*"([A-Za-z_]+)"')


def json_text(head: bytes) -> bytes | None:
    """The head as JSON text (BOM and leading whitespace removed), or None when it is not JSON text.

    Only a UTF-8 byte order mark as a whole is removed, never its bytes one by one: a protobuf
    message may well start with ``0x0a 0xef 0x5b``.
    """
    text = head[len(_BOM) :] if head.startswith(_BOM) else head
    text = text.lstrip(_WHITESPACE)
    if text[:1] not in (b"{", b"[") or _BINARY.search(text, 0, WINDOW):
        return None
    return text


def first_key(text: bytes) -> bytes:
    """The first key of a JSON object's text, or b'' when the text does not open with one."""
    found = _FIRST_KEY.match(text)
    return found.group(1) if found else b""
