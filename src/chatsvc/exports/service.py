"""Conversation exports as CSV: one row per message, denormalised with its chat, assistant,
sender, chat user, feedback and moderation columns, streamed from the database in constant
memory into a stream or atomically into a file.

Format decisions (RFC 4180 through the csv module):

- UTF-8, CRLF after every record, quotes only where needed, a quote inside a field doubled.
- No byte order mark by default: RFC 4180 has none, and machine readers (Python's csv with
  encoding="utf-8", COPY FROM, most CSV libraries) would see it as part of the first header. Excel
  guesses a legacy code page for a UTF-8 file without one when it is double-clicked, so a face that
  serves downloads to spreadsheet users passes `bom=True`.
- Cells of user-written text that start with = + - @ tab or CR get a leading apostrophe, so a
  spreadsheet shows them as text instead of evaluating a formula planted in a chat (OWASP "CSV
  Injection"). `neutralise_formulas=False` gives the raw text to machine consumers.
- Only the header row is translated; values (true/false, roles, statuses, ISO 8601 UTC times
  with microseconds and Z, JSON) stay the same in every language so every file parses alike.
- `references` is the JSON text as the database keeps it (PostgreSQL's jsonb text form, SQLite's
  stored text): valid JSON either way, and not decoding and re-encoding it per row made the
  export a quarter faster.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Final, TextIO

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chatsvc.assistants.repository import AssistantRepository
from chatsvc.exports.csv_writer import (
    BOM,
    CsvChunks,
    HashingFile,
    describe_file,
    neutralise_formula,
    text_sink,
)
from chatsvc.exports.repository import ExportRepository
from chatsvc.exports.schemas import ExportFilters, ExportResult, Language, Progress
from chatsvc.kit.db import snapshot_reads
from chatsvc.kit.errors import Invalid, NotFound

#: Column keys, in file order. They are a contract: later work fills columns, never renames them.
COLUMNS: Final[tuple[str, ...]] = (
    "chat_id",
    "chat_uuid",
    "chat_title",
    "assistant_id",
    "assistant_description",
    "assistant_deleted",
    "chat_user_username",
    "chat_user_full_name",
    "message_id",
    "message_uuid",
    "msg_num",
    "usr_msg_num",
    "role",
    "content",
    "created_at",
    "sender_username",
    "sender_full_name",
    "chat_like",
    "chat_comment",
    "message_like",
    "fixed",
    "references",
    "status",
    "visible",
    "is_flagged",
    "severity",
    "injection_categories",
    "pii_categories",
    "action_taken",
)

#: Each message's moderation verdict; the category lists are written joined by ";".
MODERATION_COLUMNS: Final[tuple[str, ...]] = (
    "is_flagged",
    "severity",
    "injection_categories",
    "pii_categories",
    "action_taken",
)


def _headers(*names: str) -> dict[str, str]:
    if len(names) != len(COLUMNS):
        raise ValueError(f"{len(names)} header names for {len(COLUMNS)} columns")
    return dict(zip(COLUMNS, names, strict=True))


#: HEADERS[language][column key]: the header row of each supported language.
HEADERS: Final[dict[str, dict[str, str]]] = {
    Language.EN_US: _headers(
        "Chat ID",
        "Chat UUID",
        "Chat title",
        "Assistant ID",
        "Assistant",
        "Assistant deleted",
        "Chat user",
        "Chat user name",
        "Message ID",
        "Message UUID",
        "Message number",
        "Replies to message",
        "Role",
        "Content",
        "Created at (UTC)",
        "Sender",
        "Sender name",
        "Chat liked",
        "Chat comment",
        "Message liked",
        "Fixed response",
        "References",
        "Status",
        "Visible",
        "Flagged",
        "Moderation severity",
        "Prompt injection categories",
        "Personal data categories",
        "Moderation action",
    ),
    Language.ES_ES: _headers(
        "ID del chat",
        "UUID del chat",
        "Título del chat",
        "ID del asistente",
        "Asistente",
        "Asistente eliminado",
        "Usuario del chat",
        "Nombre del usuario del chat",
        "ID del mensaje",
        "UUID del mensaje",
        "Número de mensaje",
        "Responde al mensaje",
        "Rol",
        "Contenido",
        "Creado (UTC)",
        "Remitente",
        "Nombre del remitente",
        "Me gusta del chat",
        "Comentario del chat",
        "Me gusta del mensaje",
        "Respuesta fija",
        "Referencias",
        "Estado",
        "Visible",
        "Marcado",
        "Gravedad (moderación)",
        "Categorías de inyección de prompt",
        "Categorías de datos personales",
        "Acción de moderación",
    ),
    Language.PT_BR: _headers(
        "ID do chat",
        "UUID do chat",
        "Título do chat",
        "ID do assistente",
        "Assistente",
        "Assistente excluído",
        "Usuário do chat",
        "Nome do usuário do chat",
        "ID da mensagem",
        "UUID da mensagem",
        "Número da mensagem",
        "Responde à mensagem",
        "Papel",
        "Conteúdo",
        "Criado em (UTC)",
        "Remetente",
        "Nome do remetente",
        "Curtida do chat",
        "Comentário do chat",
        "Curtida da mensagem",
        "Resposta fixa",
        "Referências",
        "Status",
        "Visível",
        "Sinalizado",
        "Gravidade (moderação)",
        "Categorias de injeção de prompt",
        "Categorias de dados pessoais",
        "Ação de moderação",
    ),
    Language.FR_FR: _headers(
        "ID de la conversation",
        "UUID de la conversation",
        "Titre de la conversation",
        "ID de l'assistant",
        "Assistant",
        "Assistant supprimé",
        "Utilisateur de la conversation",
        "Nom de l'utilisateur de la conversation",
        "ID du message",
        "UUID du message",
        "Numéro du message",
        "Répond au message",
        "Rôle",
        "Contenu",
        "Créé le (UTC)",
        "Expéditeur",
        "Nom de l'expéditeur",
        "Conversation appréciée",
        "Commentaire sur la conversation",
        "Message apprécié",
        "Réponse fixe",
        "Références",
        "Statut",
        "Visible",
        "Signalé",
        "Gravité (modération)",
        "Catégories d'injection de prompt",
        "Catégories de données personnelles",
        "Action de modération",
    ),
    Language.DE_DE: _headers(
        "Chat-ID",
        "Chat-UUID",
        "Chat-Titel",
        "Assistenten-ID",
        "Assistent",
        "Assistent gelöscht",
        "Chat-Benutzer",
        "Name des Chat-Benutzers",
        "Nachrichten-ID",
        "Nachrichten-UUID",
        "Nachrichtennummer",
        "Antwort auf Nachricht",
        "Rolle",
        "Inhalt",
        "Erstellt am (UTC)",
        "Absender",
        "Name des Absenders",
        "Chat gefällt",
        "Chat-Kommentar",
        "Nachricht gefällt",
        "Feste Antwort",
        "Referenzen",
        "Status",
        "Sichtbar",
        "Markiert",
        "Schweregrad (Moderation)",
        "Prompt-Injection-Kategorien",
        "Kategorien personenbezogener Daten",
        "Moderationsmaßnahme",
    ),
}

#: Rows fetched per round trip of the server-side cursor: large enough that round trips cost
#: little, small enough that a batch of long messages stays a few megabytes.
FETCH_ROWS: Final = 1000
DEFAULT_PROGRESS_EVERY: Final = 5000

_BOOL: Final[dict[bool | None, str]] = {True: "true", False: "false", None: ""}


def _utc_iso(value: datetime) -> str:
    if value.tzinfo is not UTC:  # both drivers hand back UTC already: skip the conversion
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")[:-6] + "Z"


def _formatter(neutralise_formulas: bool) -> Callable[[Sequence[Any]], list[Any]]:
    """The per-row function (O(1) in the rows already written): database row (the columns of
    `exports.repository.rows_statement`, in order) → CSV cells."""
    guard: Callable[[str], str] = neutralise_formula if neutralise_formulas else str

    def cells(row: Sequence[Any]) -> list[Any]:
        (
            chat_id,
            chat_uuid,
            chat_title,
            assistant_id,
            assistant_description,
            assistant_deleted,
            user_username,
            user_full_name,
            message_id,
            message_uuid,
            msg_num,
            usr_msg_num,
            role,
            content,
            created_at,
            sender_username,
            sender_full_name,
            chat_like,
            chat_comment,
            message_like,
            fixed,
            references,
            status,
            visible,
            redacted,
            is_flagged,
            severity,
            injection_categories,
            pii_categories,
            action_taken,
        ) = row
        return [
            chat_id,
            chat_uuid,
            guard(chat_title),
            assistant_id,
            guard(assistant_description),
            _BOOL[assistant_deleted],
            guard(user_username or ""),
            guard(user_full_name or ""),
            message_id,
            message_uuid,
            msg_num,
            usr_msg_num,
            role,
            guard(redacted if redacted is not None else content),
            _utc_iso(created_at),
            guard(sender_username or ""),
            guard(sender_full_name or ""),
            _BOOL[chat_like],
            guard(chat_comment or ""),
            _BOOL[message_like],
            guard(fixed or ""),
            references,
            status,
            _BOOL[visible],
            _BOOL[is_flagged],
            severity,
            ";".join(injection_categories or ()),
            ";".join(pii_categories or ()),
            action_taken,
        ]

    return cells


def _appending(
    cells: Callable[[Sequence[Any]], list[Any]], extra: list[str]
) -> Callable[[Sequence[Any]], list[Any]]:
    """`cells` with the same values appended to every row (a face's context, e.g. the chat's
    bundle in an artifacts-v5 chat export)."""
    return lambda row: cells(row) + extra


async def check_scope(session: AsyncSession, filters: ExportFilters) -> None:
    """A chat or assistant filter must name one of the workspace's (deleted assistants count):
    another workspace's id is reported as missing, never exported as an empty file."""
    exports = ExportRepository(session)
    if filters.chat_id is not None and not await exports.has_chat(
        filters.workspace_id, filters.chat_id
    ):
        raise NotFound(f"Chat {filters.chat_id} not found.")
    if filters.assistant_id is not None and not await AssistantRepository(session).exists_any(
        filters.workspace_id, filters.assistant_id
    ):
        raise NotFound(f"Assistant {filters.assistant_id} not found.")


async def count_rows(session: AsyncSession, filters: ExportFilters) -> int:
    """How many data rows an export with these filters writes (at this moment)."""
    await check_scope(session, filters)
    return await ExportRepository(session).count(filters)


async def _write(
    session: AsyncSession,
    filters: ExportFilters,
    emit: Callable[[str], object],
    *,
    progress: Progress | None,
    progress_every: int,
    bom: bool,
    neutralise_formulas: bool,
    extra_columns: Sequence[tuple[str, str]] = (),
) -> int:
    if progress_every < 1:
        raise Invalid(f"progress_every must be at least 1, got {progress_every}.")
    exports = ExportRepository(session)
    total = await exports.count(filters) if progress is not None else None
    chunks = CsvChunks(emit)
    if bom:
        emit(BOM)
    header = HEADERS[filters.language]
    chunks.writerow([*(header[key] for key in COLUMNS), *(name for name, _ in extra_columns)])
    cells = _formatter(neutralise_formulas)
    if extra_columns:
        cells = _appending(cells, [value for _, value in extra_columns])
    writerows = chunks.writerows
    done = 0
    next_report = progress_every
    last_report: tuple[int, int | None] | None = None
    # A server-side cursor fetching FETCH_ROWS at a time: memory does not grow with the export.
    async with exports.rows(filters, FETCH_ROWS) as batches:
        async for batch in batches:
            start = 0
            while start < len(batch):
                # Whole slices through writerows (no Python call per row), cut where a progress
                # report falls due.
                stop = min(len(batch), start + next_report - done)
                writerows(map(cells, batch[start:stop]))
                done += stop - start
                start = stop
                if done == next_report:
                    if progress is not None:
                        chunks.flush()
                        last_report = (done, total)
                        await progress(done, total)
                    next_report += progress_every
            chunks.flush()
    chunks.flush()
    # The count ran before the rows were read, so rows committed in between can make it stale;
    # the last report gives the exact figure.
    if progress is not None and last_report != (done, done):
        await progress(done, done)
    return done


async def write_csv(
    session: AsyncSession,
    filters: ExportFilters,
    out: BinaryIO | TextIO,
    *,
    progress: Progress | None = None,
    progress_every: int = DEFAULT_PROGRESS_EVERY,
    bom: bool = False,
    neutralise_formulas: bool = True,
) -> int:
    """Write the header and one row per message to `out` in (chat, message number) order;
    return the number of data rows.

    `out` is a text stream (`io.TextIOBase`, opened with newline="") or any binary stream (UTF-8
    bytes are written). Rows are read through a server-side cursor and written a batch at a time,
    so memory does not grow with the export. With `progress`, the rows are counted first and
    `progress(done, total)` is awaited every `progress_every` rows and once at the end with
    (rows, rows); it must not use this session, which is busy streaming."""
    await check_scope(session, filters)
    return await _write(
        session,
        filters,
        text_sink(out),
        progress=progress,
        progress_every=progress_every,
        bom=bom,
        neutralise_formulas=neutralise_formulas,
    )


def _check_name(name: str) -> None:
    # A plain file name inside the directory; names starting with a dot are the temporary files.
    if not name or name != Path(name).name or name.startswith(".") or "\x00" in name:
        raise Invalid(
            f"Export file name {name!r} must be a plain file name not starting with a dot.",
            code="invalid_file_name",
        )


def _open_temporary(directory: Path, name: str) -> tuple[BinaryIO, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    # mkstemp: a fresh name (concurrent exports never share a temporary file), mode 0600
    # (chat content is personal data).
    descriptor, path = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".part")
    return os.fdopen(descriptor, "wb"), Path(path)


def _publish(file: BinaryIO, temporary: Path, final: Path) -> None:
    """Make the finished temporary file durable, then give it its final name in one step."""
    file.flush()
    os.fsync(file.fileno())
    file.close()
    os.replace(temporary, final)
    # The rename itself is durable only once the directory entry is on disk.
    directory = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _discard(file: BinaryIO, temporary: Path) -> None:
    file.close()
    temporary.unlink(missing_ok=True)


async def export_to_file(
    sessionmaker: async_sessionmaker[AsyncSession],
    filters: ExportFilters,
    directory: Path,
    name: str,
    progress: Progress | None = None,
    *,
    progress_every: int = DEFAULT_PROGRESS_EVERY,
    bom: bool = False,
    neutralise_formulas: bool = True,
    extra_columns: Sequence[tuple[str, str]] = (),
) -> ExportResult:
    """Export into `directory / name`, atomically and idempotently. `extra_columns` are
    (header, value) pairs appended to the header and to every row.

    The CSV is written to a hidden temporary file in the same directory, made durable, and
    renamed to `name` only when complete: a failure or a crash never leaves a partial file under
    the final name (a crash may leave a `.<name>.*.part` file to sweep). The name is the export's
    identity: when the file already exists the export finished before and the file is returned
    as it is, not rewritten (progress gets one final report). The export reads in a session of
    its own, opened and closed here."""
    _check_name(name)
    final = directory / name
    # A snapshot that takes no write lock on SQLite: the progress reports (and every other
    # writer) go on while the export reads.
    async with snapshot_reads(sessionmaker)() as session:
        await check_scope(session, filters)
        if await asyncio.to_thread(final.is_file):
            rows, size, digest = await asyncio.to_thread(describe_file, final)
            if progress is not None:  # a retried job shows as complete, like the first run
                await progress(rows, rows)
            return ExportResult(final, rows, size, digest)
        opened, temporary = await asyncio.to_thread(_open_temporary, directory, name)
        file = HashingFile(opened)
        try:
            rows = await _write(
                session,
                filters,
                file.write,
                progress=progress,
                progress_every=progress_every,
                bom=bom,
                neutralise_formulas=neutralise_formulas,
                extra_columns=extra_columns,
            )
            await asyncio.to_thread(_publish, opened, temporary, final)
        except BaseException:
            # Synchronously (a close and an unlink): it must run even when the task is cancelled.
            _discard(opened, temporary)
            raise
    return ExportResult(final, rows, file.size, file.hexdigest())
