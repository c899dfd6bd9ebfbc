# ruff: noqa: S608, S611 -- the SQL is built from a TextIndex's identifiers (checked against
# _IDENTIFIER when it is defined, in code); every value a user sends travels as a parameter.
"""Full-text search by database vendor: PostgreSQL full-text (a GIN expression index) or SQLite FTS5.

A :class:`TextIndex` names one text column of one table. :func:`index_operation` is the migration
operation that builds its index (and, on SQLite, the FTS5 table and the triggers that keep it in
sync); :func:`matching` filters and annotates a queryset of that table's model with ``fts_rank``
(higher is better) and ``fts_snippet`` (the matched words between ``<mark>`` and ``</mark>``).
Scoping (whose rows) stays with the caller's queryset, so the index is shared by every owner.

Queries are plain words (no operator syntax): every word must match, the last one as a prefix
on SQLite; PostgreSQL reads them with ``websearch_to_tsquery`` (quotes and ``-word`` work there).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import connection, migrations
from django.db.models import BooleanField, FloatField, QuerySet, TextField
from django.db.models.expressions import RawSQL

MARK_START, MARK_END = "<mark>", "</mark>"
MAX_QUERY_CHARS = 500
_WORD = re.compile(r"\w+", re.UNICODE)
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class TextIndex:
    """The full-text index of ``table.column`` (rows identified by ``pk``)."""

    name: str  # the PostgreSQL index's and the SQLite FTS5 table's name
    table: str
    column: str
    pk: str = "id"
    config: str = "english"  # PostgreSQL text search configuration

    def __post_init__(self) -> None:
        for value in (self.name, self.table, self.column, self.pk, self.config):
            if not _IDENTIFIER.match(value):
                raise ValueError(f"not a plain SQL identifier: {value!r}")

    def tsvector(self, *, qualified: bool = True) -> str:
        """The GIN index's expression (a query must repeat it for the index to serve it)."""
        column = f"{self.table}.{self.column}" if qualified else self.column
        return f"to_tsvector('{self.config}'::regconfig, COALESCE({column}, ''))"

    def postgresql_install(self) -> list[str]:
        return [f"CREATE INDEX IF NOT EXISTS {self.name} ON {self.table} USING GIN "
                f"({self.tsvector(qualified=False)})"]

    def postgresql_uninstall(self) -> list[str]:
        return [f"DROP INDEX IF EXISTS {self.name}"]

    def sqlite_install(self) -> list[str]:
        # An FTS5 table (row_id, body) and a map of row id -> FTS rowid, so the triggers find a
        # row's FTS entry by the map's primary key instead of scanning the FTS table.
        t, c, pk, fts = self.table, self.column, self.pk, self.name
        rows = f"{fts}_rows"
        return [
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {fts} USING fts5(row_id UNINDEXED, body, "
            "tokenize='porter unicode61')",
            f"CREATE TABLE IF NOT EXISTS {rows} (row_id TEXT PRIMARY KEY, fts_rowid INTEGER NOT NULL)",
            f"INSERT INTO {fts} (row_id, body) SELECT {pk}, {c} FROM {t}",  # nosec B608
            f"INSERT INTO {rows} (row_id, fts_rowid) SELECT row_id, rowid FROM {fts}",  # nosec B608
            f"CREATE TRIGGER IF NOT EXISTS {fts}_ai AFTER INSERT ON {t} BEGIN "  # nosec B608
            f"INSERT INTO {fts} (row_id, body) VALUES (new.{pk}, new.{c}); "
            f"INSERT OR REPLACE INTO {rows} (row_id, fts_rowid) VALUES (new.{pk}, last_insert_rowid()); END",
            f"CREATE TRIGGER IF NOT EXISTS {fts}_ad AFTER DELETE ON {t} BEGIN "  # nosec B608
            f"DELETE FROM {fts} WHERE rowid = (SELECT fts_rowid FROM {rows} WHERE row_id = old.{pk}); "
            f"DELETE FROM {rows} WHERE row_id = old.{pk}; END",
            f"CREATE TRIGGER IF NOT EXISTS {fts}_au AFTER UPDATE OF {c} ON {t} BEGIN "  # nosec B608
            f"DELETE FROM {fts} WHERE rowid = (SELECT fts_rowid FROM {rows} WHERE row_id = old.{pk}); "
            f"DELETE FROM {rows} WHERE row_id = old.{pk}; "
            f"INSERT INTO {fts} (row_id, body) VALUES (new.{pk}, new.{c}); "
            f"INSERT OR REPLACE INTO {rows} (row_id, fts_rowid) VALUES (new.{pk}, last_insert_rowid()); END",
        ]

    def sqlite_uninstall(self) -> list[str]:
        return [f"DROP TRIGGER IF EXISTS {self.name}_{s}" for s in ("ai", "ad", "au")] + [
            f"DROP TABLE IF EXISTS {self.name}", f"DROP TABLE IF EXISTS {self.name}_rows"]


class _VendorSQL(migrations.operations.base.Operation):
    """Run the index's SQL for the database's vendor (others: nothing)."""

    reversible = True
    reduces_to_sql = True

    def __init__(self, index: TextIndex) -> None:
        self.index = index

    def state_forwards(self, app_label, state) -> None:
        pass

    def _run(self, schema_editor, direction: str) -> None:
        vendor = schema_editor.connection.vendor
        statements = getattr(self.index, f"{vendor}_{direction}", None)
        for sql in statements() if statements else []:
            schema_editor.execute(sql, params=None)

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        self._run(schema_editor, "install")

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        self._run(schema_editor, "uninstall")

    def describe(self) -> str:
        return f"Full-text index {self.index.name} on {self.index.table}.{self.index.column}"

    def deconstruct(self):
        return self.__class__.__name__, [self.index], {}


def index_operation(index: TextIndex) -> migrations.operations.base.Operation:
    """The migration operation creating ``index`` on PostgreSQL or SQLite (reversible)."""
    return _VendorSQL(index)


def words(query: str) -> list[str]:
    """The searchable words of ``query`` (bounded)."""
    return _WORD.findall(query[:MAX_QUERY_CHARS])[:32]


def _fts5_query(query: str) -> str:
    terms = [f'"{w}"' for w in words(query)]
    if terms:
        terms[-1] += "*"
    return " ".join(terms)


def matching(queryset: QuerySet, index: TextIndex, query: str, *, fragment_words: int = 16) -> QuerySet:
    """``queryset`` narrowed to rows matching ``query``, annotated with ``fts_rank`` and
    ``fts_snippet``, best first. A query without words matches nothing."""
    if not words(query):
        return queryset.none()
    vendor = connection.vendor
    table, pk = index.table, index.pk
    if vendor == "postgresql":
        tsquery = f"websearch_to_tsquery('{index.config}'::regconfig, %s)"
        options = (f"StartSel={MARK_START}, StopSel={MARK_END}, MaxWords={fragment_words * 2}, "
                   f"MinWords={fragment_words}")
        return queryset.annotate(
            fts_rank=RawSQL(f"ts_rank({index.tsvector()}, {tsquery})", [query], output_field=FloatField()),  # nosec B611
            fts_snippet=RawSQL(f"ts_headline('{index.config}'::regconfig, {table}.{index.column}, {tsquery}, %s)",  # nosec B611
                               [query, options], output_field=TextField()),
        ).filter(RawSQL(f"{index.tsvector()} @@ {tsquery}", [query], output_field=BooleanField())  # nosec B611
                 ).order_by("-fts_rank", f"-{pk}")
    if vendor == "sqlite":
        fts, match = index.name, _fts5_query(query)
        where = f"{fts}.row_id = {table}.{pk} AND {fts} MATCH %s"
        return queryset.annotate(
            fts_rank=RawSQL(f"(SELECT -bm25({fts}) FROM {fts} WHERE {where})", [match], output_field=FloatField()),  # nosec B608 B611
            fts_snippet=RawSQL(  # nosec B611
                f"(SELECT snippet({fts}, 1, %s, %s, ' … ', %s) FROM {fts} WHERE {where})",  # nosec B608
                [MARK_START, MARK_END, fragment_words, match], output_field=TextField()),
        ).filter(RawSQL(f"{table}.{pk} IN (SELECT row_id FROM {fts} WHERE {fts} MATCH %s)", [match],  # nosec B608 B611
                        output_field=BooleanField())).order_by("-fts_rank", f"-{pk}")
    raise NotImplementedError(f"full-text search is not implemented for {vendor}")
