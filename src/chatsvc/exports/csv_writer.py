"""CSV mechanics of exports, free of database and business rules: the RFC 4180 dialect, the
spreadsheet formula guard, chunked formatting and the sinks that turn text into UTF-8 bytes."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO, TextIO, cast

ENCODING = "utf-8"
BOM = "\ufeff"
#: What a spreadsheet (Excel, LibreOffice, Google Sheets) may evaluate as a formula or DDE call
#: when it is the first character of a cell (OWASP "CSV Injection").
FORMULA_TRIGGERS = frozenset("=+-@\t\r")


class Rfc4180(csv.Dialect):
    """RFC 4180: comma separated, CRLF after every record, fields quoted only when they hold a
    comma, a quote or a line break, and a quote inside a field written twice."""

    delimiter = ","
    quotechar = '"'
    escapechar = None
    doublequote = True
    skipinitialspace = False
    lineterminator = "\r\n"
    quoting = csv.QUOTE_MINIMAL
    strict = True


def neutralise_formula(value: str) -> str:
    """The cell with a leading apostrophe when a spreadsheet would run it as a formula.

    Spreadsheets hide the apostrophe and show the text as typed; other readers see it, which is
    the price of opening an export of user-written text safely with a double click."""
    if value and value[0] in FORMULA_TRIGGERS:
        return "'" + value
    return value


class CsvChunks:
    """Formats rows into an in-memory buffer and hands the text to `emit` whenever `flush` is
    called, so memory holds one chunk however many rows the export has."""

    def __init__(self, emit: Callable[[str], object]) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, dialect=Rfc4180)
        self._emit = emit

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow(row)

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        self._writer.writerows(rows)

    def flush(self) -> None:
        text = self._buffer.getvalue()
        if text:
            self._emit(text)
            # Reuse the buffer instead of a new one per chunk: no garbage proportional to rows.
            self._buffer.seek(0)
            self._buffer.truncate()


def text_sink(out: BinaryIO | TextIO) -> Callable[[str], object]:
    """Where text chunks go: straight into a text stream (`io.TextIOBase`, which must be opened
    with newline="" so CRLF is kept as is), UTF-8 encoded into anything else."""
    if isinstance(out, io.TextIOBase):
        return out.write
    binary = cast(BinaryIO, out)
    return lambda text: binary.write(text.encode(ENCODING))


class HashingFile:
    """A binary file that counts and hashes what is written, so a finished export knows its size
    and SHA-256 without reading itself back."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.size = 0
        self._digest = hashlib.sha256()

    def write(self, text: str) -> None:
        data = text.encode(ENCODING)
        self._digest.update(data)
        self.size += len(data)
        # A plain write into the page cache takes microseconds; handing each chunk to a thread
        # would cost more than it saves. The fsync at the end runs in a thread.
        self.file.write(data)

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def describe_file(path: Path) -> tuple[int, int, str]:
    """(data rows, bytes, SHA-256) of a CSV file this module wrote, in one constant-memory pass.

    A record ends at a CRLF outside quotes; with doubled quotes inside fields, "outside quotes"
    is "an even number of quote characters so far". This avoids the csv module's reader, whose
    field size limit is a process-wide setting that long messages would exceed."""
    digest = hashlib.sha256()
    size = records = quotes = 0
    with path.open("rb") as file:
        for line in file:
            digest.update(line)
            size += len(line)
            quotes += line.count(b'"')
            if quotes % 2 == 0 and line.endswith(b"\r\n"):
                records += 1
    return max(records - 1, 0), size, digest.hexdigest()
