"""Read-only SQL: an argument constraint for tools that run a query (`{sql: "SELECT …"}`).

The text is tokenised and parsed with sqlglot in the configured dialect and every node of
every statement is inspected, so a write hidden in a CTE or a subquery is found as surely as
one at the top. Rules (the ids are stable):

- `sql.not_text`: not a string, blank, or containing a NUL character.
- `sql.unparsable`: sqlglot cannot tokenise or parse it, finds no statement, or understands
  a statement only as an opaque `Command` (CALL, DO, VACUUM, LOCK …) or not as a statement
  at all (PostgreSQL `NOTIFY x` parses as a column alias), and the read-only classifier
  below cannot judge it either. What Bastion cannot see into it refuses, in every mode.
- `sql.ambiguous`: text that databases read differently from sqlglot: MySQL executable
  comments `/*! … */`, a comment inside a comment (PostgreSQL nests them, SQLite and MySQL
  do not), `--` not followed by whitespace (MySQL does not treat it as a comment), a line
  comment holding a carriage return or another line break that is not `\n` (PostgreSQL ends
  the comment there, SQLite and MySQL do not), a `#` or `//` comment holding a `;` (only
  MySQL, BigQuery and Snowflake read those as comments: a statement after it runs on the
  others) and a backslash before a quote inside a literal (its meaning depends on
  `standard_conforming_strings` and `NO_BACKSLASH_ESCAPES`).
- `sql.stacked`: more statements than `max_statements`; empty statements (`SELECT 1;`) do
  not count.
- `sql.write` (when `read_only`): a statement that is not a read. The top of each statement
  must be a SELECT, set operation (UNION/INTERSECT/EXCEPT), VALUES, DESCRIBE/EXPLAIN without
  ANALYZE (EXPLAIN ANALYZE runs its statement), SHOW, or one of the catalogue pragmas in
  `READ_PRAGMAS`; below it no node may be a DML or DDL statement, `SELECT … INTO`, a row
  lock (`FOR UPDATE`/`FOR SHARE`: locks are a write intent), SET, a transaction statement,
  ATTACH/DETACH, COPY, EXECUTE, `NEXT VALUE FOR` or any other sqlglot statement node.
- `sql.function`: a call to a function in `denied_functions`, matched by its bare name,
  case-insensitively, however it is qualified (`pg_catalog.pg_read_file`), anywhere: in the
  select list, FROM, WHERE, a CTE. `DEFAULT_DENIED_FUNCTIONS` lists them by family.
- The read-only classifier, for statements sqlglot cannot parse (`EXPLAIN …` in PostgreSQL,
  SQLite and DuckDB, `SHOW search_path`, dialect `DESCRIBE`/`DESC`, `PRAGMA table_info(…)`):
  the text is tokenised (quotes, identifiers, dollar quotes and comments honoured) and split
  at `;`; each statement whose first word is EXPLAIN, SHOW, DESCRIBE, DESC or PRAGMA is a
  read when no write keyword (INSERT, DELETE, SET, INTO, COPY, VACUUM …) appears outside
  quotes (`sql.write`), no denied function is called (`sql.function`), a PRAGMA is one of
  `READ_PRAGMAS` without `=`, and no table allowlist is set (`sql.table`: it cannot see
  tables). The statement an EXPLAIN explains is first checked in full, as any statement
  (a write in it is `sql.write`, ANALYZE or not); only when that does not parse does the
  keyword test decide. Any other statement is parsed by sqlglot alone.
- `sql.table` / `sql.schema`: a referenced table or schema outside the allowlists (see
  `SqlRules`). CTE names are not tables, with SQL's own scoping: a CTE is visible to the body
  of its query and to later CTEs of its WITH, and to itself only under WITH RECURSIVE. Always,
  whatever the allowlists: a table named like a file or URL (`FROM '/etc/passwd'`, which
  DuckDB reads as a file) is refused.

Honest limits: sqlglot's dialects approximate the databases, so set `dialect` to the one the
server speaks (the generic dialect is a best effort). Unqualified names resolve through the
server's search path, so `schemas` cannot stop `pg_authid` (found in `pg_catalog`): use
`tables`. Functions that take a query or a table name as a string (`query_to_xml`, `dblink`,
`table_to_xml` …) read what the table allowlist cannot see; the default denylist names the
known ones, but extensions add more. Identifier case follows sqlglot's normalisation for the
dialect. T-SQL locking hints and the server's own permissions are not inspected: run the
server with a read-only database role as well.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError
from sqlglot.tokenizer_core import Token

from bastion.policy.refusal import Refusal, quote

__all__ = ["DEFAULT_DENIED_FUNCTIONS", "READ_PRAGMAS", "SqlRules", "check_sql"]

DEFAULT_DENIED_FUNCTIONS: tuple[str, ...] = (
    # PostgreSQL: the server's files and directories.
    *("pg_read_file", "pg_read_binary_file", "pg_stat_file", "pg_ls_dir", "pg_ls_logdir"),
    *("pg_ls_waldir", "pg_ls_tmpdir", "pg_ls_archive_statusdir"),
    *("pg_file_write", "pg_file_rename", "pg_file_unlink"),  # adminpack
    # PostgreSQL large objects: import/export server files, create and change objects.
    *("lo_import", "lo_export", "lo_create", "lo_creat", "lo_unlink", "lo_put", "lo_from_bytea", "lowrite"),
    # Other connections and SQL run from a string, which no allowlist can see into.
    *("dblink", "dblink_exec", "dblink_connect", "dblink_connect_u", "dblink_send_query"),
    *("query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema", "cursor_to_xml"),
    *("table_to_xml", "table_to_xml_and_xmlschema", "schema_to_xml", "database_to_xml"),
    *("ts_stat", "ts_rewrite"),
    # Server control and session state.
    *("pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile", "pg_promote"),
    *("pg_switch_wal", "pg_create_restore_point", "pg_logical_emit_message", "pg_notify", "set_config"),
    # Writes disguised as reads: sequences and transaction ids.
    *("nextval", "setval", "txid_current", "pg_current_xact_id"),
    # Locks held past the query.
    *("pg_advisory_lock", "pg_advisory_lock_shared", "pg_advisory_xact_lock", "pg_advisory_xact_lock_shared"),
    *("pg_try_advisory_lock", "pg_try_advisory_xact_lock", "get_lock"),
    # Delays: denial of service and timing side channels.
    *("pg_sleep", "pg_sleep_for", "pg_sleep_until", "sleep", "benchmark"),
    # SQLite: native code and the CLI's file functions.
    *("load_extension", "readfile", "writefile", "edit", "fsdir", "zipfile", "fts3_tokenizer"),
    # MySQL: files and the lib_mysqludf_sys command runners.
    *("load_file", "sys_exec", "sys_eval"),
    # SQL Server: commands and other data sources.
    *("xp_cmdshell", "openrowset", "opendatasource", "openquery"),
    # DuckDB: files, URLs and the environment.
    *("read_csv", "read_csv_auto", "read_json", "read_json_auto", "read_ndjson", "read_parquet"),
    *("parquet_scan", "read_text", "read_blob", "glob", "getenv", "sqlite_scan", "postgres_scan", "mysql_scan"),
)

READ_PRAGMAS: frozenset[str] = frozenset(
    {"table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo", "foreign_key_list"}
)
"""SQLite pragmas that only read the catalogue, whatever argument they are given."""


@dataclass(frozen=True, slots=True)
class SqlRules:
    """What a SQL argument may do.

    `dialect` is a sqlglot dialect name ("sqlite", "postgres", "mysql", "duckdb" …; None is
    generic). `tables` and `schemas` are allowlists (empty: any), written as unquoted names and
    normalised as the dialect normalises unquoted identifiers. A reference matches a `tables`
    entry when the parts both have agree from the right: `orders` matches `orders` in any
    schema, `sales.orders` matches `sales.orders` and an unqualified `orders`. A
    schema-qualified reference must name a schema in `schemas`; unqualified ones resolve
    through the search path. With either allowlist set, SHOW and PRAGMA are refused: they
    name tables the allowlist cannot check. Raises ValueError for an unknown dialect.
    """

    dialect: str | None = None
    read_only: bool = True
    tables: tuple[str, ...] = ()
    schemas: tuple[str, ...] = ()
    denied_functions: tuple[str, ...] = DEFAULT_DENIED_FUNCTIONS
    max_statements: int = 1

    def __post_init__(self) -> None:
        Dialect.get_or_raise(self.dialect)
        if self.max_statements < 1:
            raise ValueError(f"max_statements must be at least 1, not {self.max_statements}")


_Name = tuple[str, ...]  # normalised parts of a qualified name, outermost first

# Root statements a read-only check accepts; Describe, Show and Pragma are checked further.
_READ_ROOTS = (exp.Query, exp.Values, exp.Describe, exp.Show, exp.Pragma)
_WRITES: tuple[tuple[type[exp.Expr], str], ...] = (
    (exp.Insert, "INSERT"),
    (exp.Update, "UPDATE"),
    (exp.Delete, "DELETE"),
    (exp.Merge, "MERGE"),
    (exp.Copy, "COPY"),
    (exp.LoadData, "LOAD DATA"),
    (exp.Create, "CREATE"),
    (exp.Drop, "DROP"),
    (exp.Alter, "ALTER"),
    (exp.TruncateTable, "TRUNCATE"),
    (exp.Grant, "GRANT"),
    (exp.Revoke, "REVOKE"),
    (exp.Into, "SELECT … INTO"),
    (exp.Lock, "a row lock (FOR UPDATE/FOR SHARE)"),
    (exp.Attach, "ATTACH"),
    (exp.Detach, "DETACH"),
    (exp.Set, "SET"),
    (exp.Transaction, "BEGIN"),
    (exp.Commit, "COMMIT"),
    (exp.Rollback, "ROLLBACK"),
    (exp.Execute, "EXECUTE"),
    (exp.Install, "INSTALL"),
    (exp.Use, "USE"),
    (exp.Analyze, "ANALYZE"),
    (exp.NextValueFor, "NEXT VALUE FOR"),
    (exp.Pragma, "PRAGMA"),
    (exp.Describe, "DESCRIBE/EXPLAIN"),
    (exp.Show, "SHOW"),
    (exp.Cache, "CACHE"),
    (exp.Uncache, "UNCACHE"),
    (exp.Refresh, "REFRESH"),
    (exp.LockingStatement, "LOCKING"),
    (exp.MultitableInserts, "INSERT"),
    (exp.Put, "PUT"),
    (exp.Get, "GET"),
    (exp.StoredProcedure, "a procedure"),
    (exp.Block, "a procedural block"),
)
# Whatever else sqlglot files under statements (future ones too) is refused below the root,
# except these parts of ordinary queries.
_STATEMENT_MODULES = frozenset({"sqlglot.expressions.ddl", "sqlglot.expressions.dml"})
_QUERY_PARTS = (exp.Heredoc, exp.Comprehension, exp.CharacterSet)

_COMMENT_START = re.compile(r"--|/\*|#|//")
_ODD_LINE_BREAK = re.compile("\r(?!\n)|[\x0b\x0c\x85\u2028\u2029]")
_EXECUTABLE_COMMENT = re.compile(r"/\*M?!")
_DASHES_WITHOUT_SPACE = re.compile(r"--(?!\s)")
_BACKSLASH_QUOTE = re.compile(r"\\['\"]")
_FILE_LIKE_NAME = re.compile(r"[/\\:.]")


def check_sql(raw: object, rules: SqlRules) -> Refusal | None:
    """Refuse SQL text the rules do not allow; None when every statement passes."""
    if not isinstance(raw, str) or not raw.strip() or "\0" in raw:
        return Refusal("sql.not_text", "the SQL must be non-blank text without NUL characters")
    return _check(raw, rules, Dialect.get_or_raise(rules.dialect), classify=True)


def _check(raw: str, rules: SqlRules, dialect: Dialect, *, classify: bool) -> Refusal | None:
    """The whole check; `classify` lets the read-only classifier judge what sqlglot cannot parse."""
    try:
        tokens = dialect.tokenize(raw)
        ambiguity = _ambiguity(raw, tokens, dialect)
        if ambiguity:
            return Refusal("sql.ambiguous", ambiguity)
        parsed = dialect.parser().parse(tokens, raw)
    except (SqlglotError, RecursionError):
        unparsable = Refusal("sql.unparsable", f"the SQL does not parse as {rules.dialect or 'generic'} SQL")
        return _classify(raw, rules, dialect, unparsable) if classify else unparsable
    statements = [s for s in parsed if s is not None and not isinstance(s, exp.Semicolon)]
    if not statements:
        return Refusal("sql.unparsable", "the SQL contains no statement")
    if len(statements) > rules.max_statements:
        return Refusal(
            "sql.stacked", f"the SQL holds {len(statements)} statements; at most {rules.max_statements} allowed"
        )
    for statement in statements:
        refusal = (
            _statement_refusal(statement, rules.read_only)
            or _function_refusal(statement, rules.denied_functions)
            or _table_refusal(statement, rules, dialect)
        )
        if refusal:
            if classify and refusal.rule == "sql.unparsable":
                return _classify(raw, rules, dialect, refusal)
            return refusal
    return None


def _ambiguity(sql: str, tokens: Sequence[Token], dialect: Dialect) -> str | None:
    gaps: list[str] = []  # the text between tokens: whitespace and comments only
    position = 0
    for token in tokens:
        gaps.append(sql[position : token.start])
        position = token.end + 1
        if _BACKSLASH_QUOTE.search(sql[token.start : position]):
            return "a backslash before a quote in a literal means different things to different servers"
        if any("/*" in comment or "*/" in comment for comment in token.comments):
            return "a comment inside a comment ends in different places on different servers"
    gaps.append(sql[position:])
    if any(_EXECUTABLE_COMMENT.search(gap) for gap in gaps):
        return "MySQL runs the contents of /*! … */ comments"
    if any(_DASHES_WITHOUT_SPACE.search(gap) for gap in gaps):
        return "'--' without a space after it is not a comment in MySQL; write '-- '"
    starters = _line_comment_starters(dialect)
    for gap in gaps:
        if len(gap) > 2 and _COMMENT_START.search(gap):
            problem = _gap_problem(gap, starters)
            if problem:
                return problem
    return None


def _gap_problem(gap: str, starters: tuple[str, ...]) -> str | None:
    """What is ambiguous about the line comments in whitespace-and-comments text, if anything."""
    index = 0
    while (found := _COMMENT_START.search(gap, index)) is not None:
        start = found[0]
        if start == "/*":
            end = gap.find("*/", found.end())
            index = len(gap) if end < 0 else end + 2
            continue
        if start not in starters:
            index = found.end()
            continue
        end = gap.find("\n", found.end())
        end = len(gap) if end < 0 else end + 1
        problem = _line_comment_problem(start, gap[found.end() : end])
        if problem:
            return problem
        index = end
    return None


def _line_comment_problem(start: str, text: str) -> str | None:
    """`text` runs from after the comment's start up to and including its `\\n`, if any."""
    if _ODD_LINE_BREAK.search(text):
        return "a line comment holds a line break other than \\n, where some servers end it and others do not"
    if start != "--" and ";" in text:
        return f"{start!r} starts a comment only on some servers; on the others the statement after it runs"
    return None


def _line_comment_starters(dialect: Dialect) -> tuple[str, ...]:
    comments = dialect.tokenizer_class.COMMENTS
    return tuple(c for c in comments if isinstance(c, str))


# The read-only classifier: statements sqlglot cannot parse, judged word by word.


@dataclass(frozen=True, slots=True)
class _Word:
    """A token of the classifier: a word (upper-cased), a quoted string or name, or one character."""

    kind: Literal["word", "quoted", "other"]
    text: str
    start: int
    end: int


_CLASSIFIED = frozenset({"EXPLAIN", "SHOW", "DESCRIBE", "DESC", "PRAGMA"})
_WRITE_WORDS = frozenset(
    {
        "INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "REPLACE", "CREATE", "DROP", "ALTER", "TRUNCATE",
        "RENAME", "GRANT", "REVOKE", "COPY", "ATTACH", "DETACH", "SET", "RESET", "BEGIN", "START", "COMMIT",
        "ROLLBACK", "SAVEPOINT", "RELEASE", "CALL", "DO", "EXEC", "EXECUTE", "PREPARE", "DEALLOCATE", "VACUUM",
        "REINDEX", "CLUSTER", "LOCK", "UNLOCK", "LOAD", "INSTALL", "IMPORT", "EXPORT", "INTO", "OUTFILE",
        "DUMPFILE", "NOTIFY", "LISTEN", "UNLISTEN", "REFRESH", "COMMENT", "SECURITY", "KILL", "SHUTDOWN", "FLUSH",
        "PURGE", "HANDLER", "CHECKPOINT", "DISCARD", "CACHE", "UNCACHE", "PUT", "REMOVE", "OPTIMIZE", "REPAIR",
        "ANALYZE", "ANALYSE",
    }
)  # fmt: skip
_STRING_FUNCTIONS = frozenset({"REPLACE", "INSERT"})  # MySQL string functions named like writes
_EXPLAIN_OPTIONS = frozenset(
    {
        "ANALYZE", "ANALYSE", "VERBOSE", "QUERY", "PLAN", "FOR", "EXTENDED", "PARTITIONS", "FORMAT", "JSON",
        "TEXT", "TREE", "TRADITIONAL", "XML", "YAML", "LOGICAL", "PHYSICAL", "ALL", "USING", "=",
    }
)  # fmt: skip
_WORD = re.compile(r"[^\W\d]\w*", re.UNICODE)
_NUMBER = re.compile(r"\d[\w.]*")
_DOLLAR_TAG = re.compile(r"\$(?:[^\W\d]\w*)?\$")


def _classify(raw: str, rules: SqlRules, dialect: Dialect, unparsable: Refusal) -> Refusal | None:
    """The read-only classifier's verdict on text sqlglot could not parse; `unparsable` if it cannot judge."""
    words = _scan(raw, dialect)
    if isinstance(words, str):
        return Refusal("sql.ambiguous", words)
    if words is None:
        return unparsable
    statements: list[list[_Word]] = [[]]
    for word in words:
        if word.kind == "other" and word.text == ";":
            statements.append([])
        else:
            statements[-1].append(word)
    statements = [statement for statement in statements if statement]
    if not statements:
        return unparsable
    if len(statements) > rules.max_statements:
        return Refusal(
            "sql.stacked", f"the SQL holds {len(statements)} statements; at most {rules.max_statements} allowed"
        )
    for statement in statements:
        first = statement[0]
        end = statement[-1].end
        if first.kind != "word" or first.text not in _CLASSIFIED:
            if len(statements) == 1:
                return unparsable
            refusal = _check(raw[first.start : end], rules, dialect, classify=False)  # one of several
        else:
            refusal = _judge_read(raw, statement, end, rules, dialect, unparsable)
        if refusal is not None:
            return refusal
    return None


def _judge_read(
    raw: str, statement: list[_Word], end: int, rules: SqlRules, dialect: Dialect, unparsable: Refusal
) -> Refusal | None:
    """One EXPLAIN, SHOW, DESCRIBE or PRAGMA statement that sqlglot could not parse."""
    first = statement[0].text
    body = statement[1:]
    analyze = False
    if first == "EXPLAIN":
        index, analyze = _explain_options(body)
        if index >= len(body):
            return unparsable
        inner = body[index]
        if inner.kind == "word" and inner.text in _CLASSIFIED:
            return unparsable  # EXPLAIN EXPLAIN …: nothing reads like that
        explained = _check(raw[inner.start : end], rules, dialect, classify=False)
        if explained is None or explained.rule != "sql.unparsable":
            if explained is not None and analyze and explained.rule == "sql.write":
                return Refusal("sql.write", f"EXPLAIN ANALYZE runs the statement it explains: {explained.reason}")
            return explained
        body = body[index:]
    denied = {name.upper() for name in rules.denied_functions}
    for position, word in enumerate(body):
        if word.kind != "word":
            continue
        calls = position + 1 < len(body) and body[position + 1].text == "("
        if rules.read_only and word.text in _WRITE_WORDS and not (calls and word.text in _STRING_FUNCTIONS):
            if analyze:
                return Refusal("sql.write", f"EXPLAIN ANALYZE runs the statement it explains, and it holds {word.text}")
            return Refusal("sql.write", f"{word.text} is not allowed in read-only SQL")
        if calls and word.text in denied:
            return Refusal("sql.function", f"the function {quote(word.text.lower())} is not allowed")
    if first == "PRAGMA":
        named = body[2] if len(body) > 2 and body[1].text == "." else body[0] if body else None
        name = named.text.lower() if named is not None and named.kind == "word" else None
        if name not in READ_PRAGMAS or any(w.text == "=" for w in body):
            return Refusal("sql.write", f"PRAGMA {quote(name or '?')} is not a read-only pragma")
    if rules.tables or rules.schemas:
        return Refusal("sql.table", f"{first} names tables the table allowlist cannot check")
    return None


def _explain_options(body: list[_Word]) -> tuple[int, bool]:
    """Where the explained statement starts in what follows EXPLAIN, and whether ANALYZE is on."""
    index = 0
    analyze = False
    if body and body[0].text == "(":
        depth = 0
        for index, word in enumerate(body):  # the index where the group closes is the result
            depth += {"(": 1, ")": -1}.get(word.text, 0) if word.kind == "other" else 0
            if word.text in ("ANALYZE", "ANALYSE"):
                following = body[index + 1].text.upper() if index + 1 < len(body) else ""
                analyze = analyze or following not in ("FALSE", "OFF", "0")
            if depth == 0:
                break
        index += 1
    while index < len(body) and body[index].kind != "quoted" and body[index].text in _EXPLAIN_OPTIONS:
        analyze = analyze or body[index].text in ("ANALYZE", "ANALYSE")
        index += 1
    return index, analyze


def _scan(sql: str, dialect: Dialect) -> list[_Word] | str | None:
    """The classifier's tokens, an ambiguity (str), or None for text it cannot tokenise."""
    tokenizer = dialect.tokenizer_class
    quotes = tuple(q for q in tokenizer.QUOTES if isinstance(q, str))
    identifiers = tuple((i, i) if isinstance(i, str) else i for i in tokenizer.IDENTIFIERS)
    backslash = "\\" in tokenizer.STRING_ESCAPES
    dollar = "$" in (getattr(tokenizer, "HEREDOC_STRINGS", ()) or ())
    starters = _line_comment_starters(dialect)
    words: list[_Word] = []
    index = 0
    length = len(sql)
    while index < length:
        char = sql[index]
        if char.isspace():
            index += 1
            continue
        line = next((start for start in starters if sql.startswith(start, index)), None)
        if line is not None:
            end = sql.find("\n", index)
            end = length if end < 0 else end + 1
            if line == "--" and index + 2 < length and not sql[index + 2].isspace():
                return "'--' without a space after it is not a comment in MySQL; write '-- '"
            problem = _line_comment_problem(line, sql[index + len(line) : end])
            if problem:
                return problem
            index = end
            continue
        if sql.startswith("/*", index):
            end = sql.find("*/", index + 2)
            if end < 0:
                return None
            if sql.startswith(("/*!", "/*M!"), index):
                return "MySQL runs the contents of /*! … */ comments"
            if "/*" in sql[index + 2 : end]:
                return "a comment inside a comment ends in different places on different servers"
            index = end + 2
            continue
        quoted = _quoted_end(sql, index, quotes, identifiers, backslash=backslash, dollar=dollar)
        if quoted is not None:
            if quoted < 0:
                return None
            text = sql[index:quoted]
            if _BACKSLASH_QUOTE.search(text):
                return "a backslash before a quote in a literal means different things to different servers"
            words.append(_Word("quoted", text, index, quoted))
            index = quoted
            continue
        match = _WORD.match(sql, index) or _NUMBER.match(sql, index)
        if match is not None:
            words.append(_Word("word", match[0].upper(), index, match.end()))
            index = match.end()
            continue
        words.append(_Word("other", char, index, index + 1))
        index += 1
    return words


def _quoted_end(
    sql: str,
    index: int,
    quotes: tuple[str, ...],
    identifiers: tuple[tuple[str, str], ...],
    *,
    backslash: bool,
    dollar: bool,
) -> int | None:
    """Where a quoted string or name starting at `index` ends (-1: never), or None if none starts there."""
    char = sql[index]
    if dollar and char == "$":
        tag = _DOLLAR_TAG.match(sql, index)
        if tag is None:
            return None
        end = sql.find(tag[0], tag.end())
        return -1 if end < 0 else end + len(tag[0])
    close = char if char in quotes else next((c for o, c in identifiers if o == char), None)
    if close is None:
        return None
    position = index + 1
    while position < len(sql):
        current = sql[position]
        if backslash and current == "\\" and close in quotes:
            position += 2
            continue
        if current == close:
            if sql.startswith(close * 2, position) and close != "]":
                position += 2
                continue
            return position + 1
        position += 1
    return -1


def _statement_refusal(statement: exp.Expr, read_only: bool) -> Refusal | None:
    command = next(statement.find_all(exp.Command), None)
    if command is not None:
        return Refusal("sql.unparsable", f"sqlglot does not understand the {quote(command.name)} statement")
    if not (isinstance(statement, _READ_ROOTS) or _write_kind(statement)):
        return Refusal("sql.unparsable", f"sqlglot did not recognise a statement (it read {quote(statement.key)})")
    if not read_only:
        return None
    if not isinstance(statement, _READ_ROOTS):
        return Refusal("sql.write", f"{_write_kind(statement)} is not allowed in read-only SQL")
    if isinstance(statement, exp.Pragma) and _pragma_name(statement) not in READ_PRAGMAS:
        return Refusal("sql.write", f"PRAGMA {quote(_pragma_name(statement) or '?')} is not a read-only pragma")
    runs = isinstance(statement, exp.Describe) and statement.text("style").upper() == "ANALYZE"
    for node in statement.walk():
        kind = _write_kind(node) if node is not statement else None
        if kind and runs:
            return Refusal("sql.write", f"EXPLAIN ANALYZE runs the statement it explains, and it holds {kind}")
        if kind:
            return Refusal("sql.write", f"{kind} is not allowed in read-only SQL")
    return None


def _write_kind(node: exp.Expr) -> str | None:
    for types, kind in _WRITES:
        if isinstance(node, types):
            return kind
    if type(node).__module__ in _STATEMENT_MODULES and not isinstance(node, _QUERY_PARTS):
        return node.key.upper()
    return None


def _pragma_name(pragma: exp.Pragma) -> str | None:
    target = pragma.this
    if isinstance(target, exp.EQ):  # `PRAGMA x = v` and `PRAGMA x(v)` both parse so
        target = target.this
    if isinstance(target, exp.Dot):  # `PRAGMA main.x`
        target = target.expression
    # SQLite's parser reads the name as a Var; the generic and other dialects' as a call or a column.
    return target.name.lower() if isinstance(target, (exp.Var, exp.Anonymous, exp.Column)) else None


def _function_refusal(statement: exp.Expr, denied: Sequence[str]) -> Refusal | None:
    if not denied:
        return None
    denied_names = {name.lower() for name in denied}
    for function in statement.find_all(exp.Func):
        if isinstance(function, (exp.Anonymous, exp.AnonymousAggFunc)):
            names = {function.name.lower().rsplit(".", 1)[-1]}
        else:
            names = {name.lower() for name in function.sql_names()}
        hit = sorted(names & denied_names)
        if hit:
            return Refusal("sql.function", f"the function {quote(hit[0])} is not allowed")
    return None


def _table_refusal(statement: exp.Expr, rules: SqlRules, dialect: Dialect) -> Refusal | None:
    restricted = bool(rules.tables or rules.schemas)
    if restricted and isinstance(statement, (exp.Show, exp.Pragma)):
        return Refusal("sql.table", "SHOW and PRAGMA name tables the table allowlist cannot check")
    tables = [_entry(entry, dialect) for entry in rules.tables]
    schemas = [_entry(entry, dialect) for entry in rules.schemas]
    for table in statement.find_all(exp.Table):
        target = table.this
        if target is None or isinstance(target, exp.Func):
            continue  # rows from functions; the functions are checked by name
        name = _reference(table, dialect)
        if name is None:
            if restricted:
                return Refusal("sql.table", f"the table reference {quote(table.sql(dialect=dialect))} is not a name")
            continue
        shown = quote(".".join(name))
        if any(_FILE_LIKE_NAME.search(part) for part in name):
            return Refusal("sql.table", f"the table {shown} is named like a file or URL")
        if _is_cte(table, name[-1], dialect):
            continue
        if tables and not any(_suffix_match(name, entry) for entry in tables):
            return Refusal("sql.table", f"the table {shown} is not in the table allowlist")
        if schemas and len(name) > 1 and not any(_suffix_match(name[:-1], entry) for entry in schemas):
            return Refusal("sql.schema", f"the schema of {shown} is not in the schema allowlist")
    return None


def _reference(table: exp.Table, dialect: Dialect) -> _Name | None:
    parts: list[str] = []
    for key in ("catalog", "db", "this"):
        part = table.args.get(key)
        if part is None:
            continue
        if not isinstance(part, exp.Identifier):
            return None
        parts.append(_normalise(part, dialect))
    return tuple(parts)


def _is_cte(table: exp.Table, name: str, dialect: Dialect) -> bool:
    if table.args.get("db") or table.args.get("catalog"):
        return False
    child: exp.Expr = table
    parent = table.parent
    while parent is not None:
        if isinstance(parent, exp.With):
            ctes = list(parent.expressions)
            index = next((i for i, cte in enumerate(ctes) if cte is child), -1)  # -1: none visible
            visible = ctes[: index + 1] if parent.args.get("recursive") else ctes[: max(index, 0)]
        else:
            scope = parent.args.get("with_")
            visible = list(scope.expressions) if isinstance(scope, exp.With) and scope is not child else []
        if any(_cte_name(cte, dialect) == name for cte in visible):
            return True
        child, parent = parent, parent.parent
    return False


def _cte_name(cte: exp.Expr, dialect: Dialect) -> str | None:
    alias = cte.args.get("alias")
    identifier = alias.this if isinstance(alias, exp.TableAlias) else None
    return _normalise(identifier, dialect) if isinstance(identifier, exp.Identifier) else None


def _normalise(identifier: exp.Identifier, dialect: Dialect) -> str:
    return dialect.normalize_identifier(identifier.copy()).name


def _entry(entry: str, dialect: Dialect) -> _Name:
    return tuple(_normalise(exp.Identifier(this=part, quoted=False), dialect) for part in entry.split("."))


def _suffix_match(reference: _Name, entry: _Name) -> bool:
    shorter = min(len(reference), len(entry))
    return reference[len(reference) - shorter :] == entry[len(entry) - shorter :]
