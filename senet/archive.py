"""Untrusted ``.zip`` uploads -> the bytes of their members, each with a reason when it is skipped.

Nothing is ever extracted to disk: members are read into memory with bounded reads. Refused or skipped, each with
a sentence a person understands:

- the whole archive: not a zip file, larger than ``max_archive_bytes``, more than ``max_entries`` entries (read
  from the end-of-central-directory record before Python's zipfile parses the directory), encrypted;
- a member: a symbolic link, a path that would leave a folder (``../x``, ``/etc/x``, ``C:\\x``), an archive inside
  the archive (by name or by its first bytes), encrypted, larger than ``max_member_bytes``, compressed more than
  ``max_ratio`` times (zip bombs), larger than its header declares, past the ``max_files`` or
  ``max_total_bytes`` budget, or damaged.

Whether a member is an image is left to ``senet.image_io.load_image``, which looks at the content.
"""

from __future__ import annotations

import stat
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

MAX_FILES = 200
MAX_TOTAL_BYTES = 200 * 2**20  # uncompressed, all members together
MAX_MEMBER_BYTES = 20 * 2**20  # the single-photo limit of image_io.load_image
MAX_ARCHIVE_BYTES = 200 * 2**20
MAX_ENTRIES = 1000  # central-directory entries, folders included
MAX_RATIO = 100  # uncompressed / compressed size; photos barely compress, bombs compress 1000-fold
_CHUNK = 2**16
_EOCD = b"PK\x05\x06"
# First bytes of archive and compressed formats: a nested archive is never opened.
_ARCHIVE_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"7z\xbc\xaf\x27\x1c",
                  b"Rar!\x1a\x07", b"\x28\xb5\x2f\xfd")
_ARCHIVE_SUFFIXES = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".zst", ".jar", ".apk")


class ArchiveRejected(ValueError):
    """The whole archive is refused; ``str(error)`` is a sentence for the person who sent it."""


@dataclass(frozen=True)
class Member:
    """One file of the archive: its bytes, or the reason it was skipped (then ``data`` is None)."""

    name: str  # the path inside the archive, as stored (shown to people, never used as a path)
    data: bytes | None
    reason: str | None = None


def is_zip(path: str | Path) -> bool:
    """Whether the file starts like a zip archive (by content, not by name)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(4) in (b"PK\x03\x04", b"PK\x05\x06")
    except OSError:
        return False


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.0f} MB" if size >= 2**20 else f"{size / 2**10:.0f} KB"


def _declared_entries(path: Path, size: int) -> int:
    """The entry count of the end-of-central-directory record (0xFFFF means a zip64 archive: more entries)."""
    with open(path, "rb") as handle:
        tail_size = min(size, 22 + 65535)  # the record is 22 bytes plus a comment of at most 64 KB
        handle.seek(size - tail_size)
        tail = handle.read(tail_size)
    at = tail.rfind(_EOCD)
    if at < 0 or at + 22 > len(tail):
        raise ArchiveRejected("This file is not a zip archive that can be read.")
    return struct.unpack("<H", tail[at + 10: at + 12])[0]


def _unsafe_name(name: str) -> bool:
    """A name that would leave the extraction folder if extracted: absolute, drive letters, ``..`` parts."""
    if not name or "\x00" in name:
        return True
    posix = name.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        return True
    return ".." in PurePosixPath(posix).parts


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)


def _skip_reason(info: zipfile.ZipInfo, max_member_bytes: int, max_ratio: float) -> str | None:
    """Why a member is skipped from its directory entry alone, or None."""
    if _is_symlink(info):
        return "Skipped: a symbolic link, not a file."
    if _unsafe_name(info.filename):
        return "Skipped: its path points outside the archive's folder."
    if info.filename.lower().endswith(_ARCHIVE_SUFFIXES):
        return "Skipped: an archive inside the archive is not opened."
    if info.flag_bits & 0x1:
        return "Skipped: the file is encrypted."
    if info.file_size > max_member_bytes:
        return f"Skipped: too large ({_megabytes(info.file_size)}; the limit is {_megabytes(max_member_bytes)})."
    if info.file_size > 2**16 and info.file_size > max_ratio * max(info.compress_size, 1):
        return (f"Skipped: compressed {info.file_size / max(info.compress_size, 1):.0f} times, more than "
                f"{max_ratio:g} (a photo barely compresses; this looks like a zip bomb).")
    return None


def _hidden(name: str) -> bool:
    """Operating-system clutter that is not a user's file: macOS resource forks and ``.DS_Store``."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return bool(parts) and (parts[0] == "__MACOSX" or parts[-1] == ".DS_Store" or parts[-1].startswith("._"))


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> bytes | str:
    """The member's bytes, read at most ``min(declared size, budget) + 1`` bytes; or a reason string."""
    limit = min(info.file_size, budget)
    chunks: list[bytes] = []
    total = 0
    try:
        with archive.open(info) as handle:
            while total <= limit:
                chunk = handle.read(min(_CHUNK, limit + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError, RuntimeError):
        # CRC mismatch, truncated data, unsupported compression method, encryption
        return "Skipped: the file is damaged inside the archive or uses an unsupported compression."
    except Exception:  # zlib / bz2 / lzma raise their own types on corrupt streams
        return "Skipped: the file is damaged inside the archive."
    if total > info.file_size:
        return "Skipped: it holds more data than the archive declares for it (a zip-bomb trick)."
    if total > budget:
        return "Skipped: the archive's total size limit was reached."
    data = b"".join(chunks)
    if data.startswith(_ARCHIVE_MAGIC):
        return "Skipped: an archive inside the archive is not opened."
    return data


def read_zip(
    path: str | Path,
    *,
    max_files: int = MAX_FILES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_member_bytes: int = MAX_MEMBER_BYTES,
    max_archive_bytes: int = MAX_ARCHIVE_BYTES,
    max_entries: int = MAX_ENTRIES,
    max_ratio: float = MAX_RATIO,
) -> list[Member]:
    """Read the files of an untrusted zip archive into memory, in archive order.

    Folders and operating-system clutter (``__MACOSX/``, ``.DS_Store``, ``._*``) are left out; every other entry
    gives one :class:`Member`, with ``data`` or with the ``reason`` it was skipped.

    Raises:
        ArchiveRejected: the archive as a whole cannot be read or breaks a limit.
    """
    path = Path(path)
    _check_archive(path, max_archive_bytes=max_archive_bytes, max_entries=max_entries, max_files=max_files)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError):
        raise ArchiveRejected("This file is not a zip archive that can be read.") from None
    members: list[Member] = []
    used = 0
    taken = 0
    with archive:
        if len(archive.infolist()) > max_entries:
            raise ArchiveRejected(f"The archive has too many entries; the limit is {max_entries}.")
        infos = [item for item in archive.infolist() if not item.is_dir() and not _hidden(item.filename)]
        if infos and all(item.flag_bits & 0x1 for item in infos):
            raise ArchiveRejected("The archive is encrypted; please upload an archive without a password.")
        for item in infos:
            reason = _skip_reason(item, max_member_bytes, max_ratio) or _budget_reason(
                item, taken=taken, used=used, max_files=max_files, max_total_bytes=max_total_bytes)
            read = reason if reason is not None else _read_member(archive, item, max_total_bytes - used)
            if isinstance(read, str):
                members.append(Member(item.filename, None, read))
                continue
            used += len(read)
            taken += 1
            members.append(Member(item.filename, read))
    return members


def _check_archive(path: Path, *, max_archive_bytes: int, max_entries: int, max_files: int) -> None:
    """Whole-archive refusals from the file's size and its end-of-central-directory record."""
    try:
        info = path.stat()
    except OSError:
        raise ArchiveRejected("The uploaded archive could not be found. Please upload it again.") from None
    if not stat.S_ISREG(info.st_mode):
        raise ArchiveRejected("The upload is not a regular file.")
    if info.st_size > max_archive_bytes:
        raise ArchiveRejected(f"The archive is too large ({_megabytes(info.st_size)}); "
                              f"the limit is {_megabytes(max_archive_bytes)}.")
    entries = _declared_entries(path, info.st_size)
    if entries > max_entries:
        raise ArchiveRejected(f"The archive has too many entries ({entries if entries < 0xFFFF else 'over 65535'}); "
                              f"the limit is {max_entries} (and at most {max_files} images).")


def _budget_reason(item: zipfile.ZipInfo, *, taken: int, used: int, max_files: int, max_total_bytes: int) -> str | None:
    if taken >= max_files:
        return f"Skipped: only the first {max_files} files are read."
    if used + item.file_size > max_total_bytes:
        return f"Skipped: the archive's total size limit ({_megabytes(max_total_bytes)}) was reached."
    return None


__all__ = ["MAX_FILES", "MAX_MEMBER_BYTES", "MAX_RATIO", "MAX_TOTAL_BYTES", "ArchiveRejected", "Member", "is_zip",
           "read_zip"]
