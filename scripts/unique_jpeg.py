"""One JPEG's bytes made unique per request, for benchmarks that must not be answered by the app's answer cache.

The app answers a repeated photo (same bytes, model and options) from its cache (``ui/explore.py``), so a
benchmark that sends the same few files again mostly measures the cache. A comment segment changes the bytes and
the SHA-256 and leaves the decoded pixels alone.
"""

from __future__ import annotations


def unique_jpeg(data: bytes, tag: str) -> bytes:
    """``data`` (a JPEG) with a comment segment holding ``tag``: other bytes, the same pixels."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG")
    comment = tag.encode()
    return data[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + data[2:]
