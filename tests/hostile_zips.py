"""Generated zip archives for the batch tests (never committed binaries): a good one and hostile ones.

``hostile_zip()`` holds, in one archive, every kind of member the batch must skip with a reason, next to two good
photos; ``EXPECTED`` maps each member name to a phrase its reason must contain (None: analysed).
"""

from __future__ import annotations

import gzip
import io
import stat
import struct
import zipfile
from pathlib import Path

from PIL import Image


def jpeg(colour: tuple[int, int, int], size: tuple[int, int] = (48, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _inner_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as inner:
        inner.writestr("deep.jpg", jpeg((0, 200, 0)))
    return buffer.getvalue()


# member name -> phrase of its reason (None: a photo that is analysed)
EXPECTED: dict[str, str | None] = {
    "photos/red.jpg": None,
    "photos/blue.jpg": None,
    "../../escape.jpg": "outside",
    "/etc/absolute.jpg": "outside",
    "link.jpg": "symbolic link",
    "inner.zip": "archive inside",
    "disguised.jpg": "archive inside",
    "bomb.png": "zip bomb",
    "notes.txt": "not an image",
    "locked.jpg": "encrypted",
}


def hostile_zip(path: Path) -> Path:
    """Write the hostile archive to ``path``: every entry of ``EXPECTED`` plus macOS clutter that is left out."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("photos/", b"")  # a folder: no row
        archive.writestr("photos/red.jpg", jpeg((220, 30, 30)))
        archive.writestr("photos/blue.jpg", jpeg((30, 30, 220)))
        archive.writestr("__MACOSX/photos/._red.jpg", b"\x00\x05\x16\x07resource fork")  # clutter: no row
        archive.writestr(zipfile.ZipInfo("../../escape.jpg"), jpeg((1, 2, 3)))
        archive.writestr(zipfile.ZipInfo("/etc/absolute.jpg"), jpeg((1, 2, 3)))
        link = zipfile.ZipInfo("link.jpg")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
        archive.writestr("inner.zip", _inner_zip())
        archive.writestr("disguised.jpg", gzip.compress(jpeg((5, 5, 5))))
        archive.writestr("bomb.png", b"\x00" * (4 * 2**20))  # 4 MB of zeros: compressed about 1000 times
        archive.writestr("notes.txt", b"not a photo at all\n" * 20)
        archive.writestr("locked.jpg", jpeg((9, 9, 9)))
    _mark_encrypted(path, b"locked.jpg")
    return path


def _mark_encrypted(path: Path, name: bytes) -> None:
    """Set the "encrypted" flag of one member in its local header and its central-directory entry (zipfile
    writes no encrypted archives)."""
    raw = bytearray(path.read_bytes())
    # (signature, offset of the flags, of the name's length, of the name)
    for signature, flag_at, length_at, name_at in ((b"PK\x03\x04", 6, 26, 30), (b"PK\x01\x02", 8, 28, 46)):
        at = raw.find(signature)
        while at >= 0:
            length = struct.unpack("<H", raw[at + length_at: at + length_at + 2])[0]
            if raw[at + name_at: at + name_at + length] == name:
                raw[at + flag_at] |= 0x1
            at = raw.find(signature, at + 4)
    path.write_bytes(bytes(raw))


def lying_zip(path: Path, declared: int = 100) -> Path:
    """One member whose directory entry declares ``declared`` bytes while the data holds far more."""
    data = bytes(range(256)) * 400  # 100 KB that barely compress
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("liar.jpg", data)
    raw = bytearray(path.read_bytes())
    central = raw.rfind(b"PK\x01\x02")
    raw[central + 24: central + 28] = struct.pack("<I", declared)  # uncompressed size in the central directory
    local = raw.find(b"PK\x03\x04")
    raw[local + 22: local + 26] = struct.pack("<I", declared)
    path.write_bytes(bytes(raw))
    return path


def many_entries_zip(path: Path, count: int) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for index in range(count):
            archive.writestr(f"f{index}.txt", b"")
    return path
