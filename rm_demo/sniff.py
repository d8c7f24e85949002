"""What a file really is, from its bytes: compression, binary formats, line endings.

Names lie (a plain CSV called `.csv.gz`, a PNG renamed `.csv`); bytes do not. The reader asks these
functions before it decodes anything, so a wrong file gets a plain answer instead of an encoding
guess, and a small compressed upload cannot grow without bound in memory.
"""

from __future__ import annotations

import zlib

from rm_demo.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"
# Suffixes pyarrow decompresses by name when given a path: such files are read as bytes instead.
COMPRESSED_SUFFIXES = (".gz", ".gzip", ".bz2", ".xz", ".zst", ".zstd", ".lz4", ".br")

# Formats that are not a text table: magic bytes -> what to tell the user.
_NOT_TEXT = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook is one)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office document (.xls or .doc)"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"\x28\xb5\x2f\xfd", "a zstd archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"SQLite format 3", "an SQLite database"),
    (b"PAR1", "a Parquet file"),
)


def not_text(head: bytes) -> str | None:
    """What the file is when it is a known binary format, else None."""
    for magic, what in _NOT_TEXT:
        if head.startswith(magic):
            return what
    if b"\x00" in head[:4096] and not _looks_utf16(head[:4096]):
        return "binary data (it holds NUL bytes and is not UTF-16 text)"
    return None


def _looks_utf16(head: bytes) -> bool:
    """UTF-16 without a BOM: text in the Latin range puts a NUL in every other byte."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    even, odd = head[0::2], head[1::2]
    if len(odd) < 2:
        return False
    # One half of the bytes nearly all NUL, the other half mostly not (all NUL is a hole, not text).
    return (odd.count(0) >= 0.9 * len(odd) and even.count(0) <= 0.5 * len(even)) or (
        even.count(0) >= 0.9 * len(even) and odd.count(0) <= 0.5 * len(odd)
    )


def gunzip(raw: bytes, source: str, limit_bytes: int | None = None) -> bytes:
    """Decompress gzip (several members too) without ever holding more than `limit_bytes` of output."""
    out, total, data = [], 0, raw
    try:
        while True:
            stream = zlib.decompressobj(16 + zlib.MAX_WBITS)
            while not stream.eof:
                room = 1 << 20 if limit_bytes is None else min(1 << 20, limit_bytes - total + 1)
                chunk = stream.decompress(data, room)
                data = stream.unconsumed_tail
                if not chunk and not data:
                    raise EOFError("the gzip stream ends early")
                out.append(chunk)
                total += len(chunk)
                if limit_bytes is not None and total > limit_bytes:
                    raise InputError(
                        f"the file is over {limit_bytes / 1e6:g} MB once decompressed",
                        source=source,
                        fix="use a smaller file; the command line reads bigger ones with --max-input-mb",
                    )
            data = stream.unused_data.lstrip(b"\x00")
            if not data:
                return b"".join(out)
    except (zlib.error, EOFError):
        raise InputError(
            "the gzip data is damaged or cut short",
            source=source,
            fix="compress it again, or use the uncompressed file",
        ) from None


def lf_line_endings(data: bytes) -> bytes:
    """Old Mac files ("CSV (Macintosh)" from Excel) end lines with CR alone: make them LF."""
    if b"\r" in data and b"\n" not in data:
        return data.replace(b"\r", b"\n")
    return data
