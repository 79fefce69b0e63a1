"""The doctor's judgements: facts in, checks out; only what the config needs can fail."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from bastion.config.load import parse_config
from bastion.config.model import BastionConfig
from bastion.doctor.checks import (
    AUDIT_TABLES,
    CLOCK_FLOOR,
    Check,
    ChromiumFacts,
    ClockFacts,
    HomeFacts,
    KeyFacts,
    KeyFile,
    SandboxFacts,
    ServerFacts,
    SinkFacts,
    Status,
    StoreFacts,
    chromium_check,
    clock_checks,
    config_checks,
    exit_code,
    home_check,
    key_checks,
    needs_sandbox,
    sandbox_checks,
    server_check,
    sink_check,
    store_check,
)
from bastion.errors import ConfigError, ConfigProblem

UID = 1000
NOW = CLOCK_FLOOR + 60 * 86400
BWRAP = "/usr/bin/bwrap"


def statuses(checks: list[Check]) -> dict[str, Status]:
    return {check.name: check.status for check in checks}


def test_only_a_failure_makes_the_exit_code_one() -> None:
    ok = Check("a", Status.OK, "")
    warned = Check("b", Status.WARN, "", "do this", needed=False)
    failed = Check("c", Status.FAIL, "", "do that")
    assert exit_code([ok, warned]) == 0
    assert exit_code([ok, warned, failed]) == 1
    assert exit_code([]) == 0


def test_no_config_is_the_defaults_and_fine() -> None:
    (check,) = config_checks(None, None, None)
    assert check.status is Status.OK
    assert "no bastion.toml" in check.detail


def test_each_problem_of_an_invalid_config_is_a_failure_with_its_line_and_fix() -> None:
    error = ConfigError(
        Path("bastion.toml"),
        [ConfigProblem("servers.fs.comand", "extra field", "remove it", line=3), ConfigProblem("gateway", "bad")],
    )
    checks = config_checks("bastion.toml", None, error)
    assert [c.status for c in checks] == [Status.FAIL, Status.FAIL]
    assert checks[0].detail.startswith("bastion.toml:3: servers.fs.comand")
    assert checks[0].fix == "remove it"
    assert checks[1].fix  # always some advice


def test_a_valid_config_counts_its_servers_and_sinks() -> None:
    config = parse_config('[servers.fs]\ncommand = "x"\n[[watch.sinks]]\nkind = "command"\ncommand = ["true"]\n')
    (check,) = config_checks("bastion.toml", config, None)
    assert check.status is Status.OK
    assert "1 server enabled, 1 alert sink" in check.detail


def test_the_sandbox_is_needed_only_for_a_sandboxed_stdio_server() -> None:
    assert not needs_sandbox(BastionConfig())
    assert needs_sandbox(parse_config('[servers.a]\ncommand = "x"\n'))
    assert not needs_sandbox(parse_config('[servers.a]\ncommand = "x"\nsandbox = "off"\n'))
    assert not needs_sandbox(parse_config('[servers.a]\nurl = "https://example.com/mcp"\n'))
    assert not needs_sandbox(parse_config('[servers.a]\ncommand = "x"\nenabled = false\n'))


HOME = HomeFacts("/srv/bastion", UID, True, True, UID, 0o700, None, 10 * 1024**3)


def home(**changes: Any) -> HomeFacts:
    return replace(HOME, **changes)


def test_a_private_writable_state_dir_is_fine() -> None:
    check = home_check(home())
    assert check.status is Status.OK
    assert "10 GB free" in check.detail


def test_a_missing_state_dir_that_can_be_created_is_fine() -> None:
    assert home_check(home(exists=False, is_dir=False, owner=None, mode=None)).status is Status.OK


def test_a_state_dir_that_cannot_be_written_or_created_fails() -> None:
    assert home_check(home(write_error="Read-only file system")).status is Status.FAIL
    missing = home_check(home(exists=False, is_dir=False, write_error="/srv is not a directory"))
    assert missing.status is Status.FAIL
    assert "cannot create" in missing.detail
    assert "BASTION_HOME" in missing.fix


def test_a_file_where_the_state_dir_should_be_fails() -> None:
    check = home_check(home(is_dir=False))
    assert check.status is Status.FAIL
    assert "not a directory" in check.detail


def test_a_state_dir_of_another_user_fails_and_one_open_to_others_warns() -> None:
    assert home_check(home(owner=0)).status is Status.FAIL
    opened = home_check(home(mode=0o755))
    assert opened.status is Status.WARN
    assert opened.fix == "chmod 700 /srv/bastion"


def test_little_free_space_warns() -> None:
    assert home_check(home(free_bytes=1024)).status is Status.WARN


def test_a_key_readable_by_others_fails_with_chmod_600() -> None:
    facts = KeyFacts(UID, (KeyFile("/h/keys/audit-signing-1.key", UID, 0o644),), ())
    (check,) = key_checks(facts)
    assert check.status is Status.FAIL
    assert check.fix == "chmod 600 /h/keys/audit-signing-1.key"


def test_a_key_of_another_user_or_unreadable_by_its_owner_fails() -> None:
    facts = KeyFacts(UID, (KeyFile("/h/keys/a.key", 0, 0o600), KeyFile("/h/keys/b.key", UID, 0o200)), ())
    assert [c.status for c in key_checks(facts)] == [Status.FAIL, Status.FAIL]


def test_private_keys_are_fine_and_none_at_all_is_a_fresh_install() -> None:
    private = KeyFacts(UID, (KeyFile("/h/keys/a.key", UID, 0o600),), (KeyFile("/h/keys", UID, 0o700),))
    assert statuses(key_checks(private)) == {"keys": Status.OK}
    (fresh,) = key_checks(KeyFacts(UID, (), ()))
    assert fresh.status is Status.OK
    assert "first use" in fresh.detail


def test_a_key_directory_open_to_others_warns_and_a_lost_master_key_fails() -> None:
    facts = KeyFacts(UID, (), (KeyFile("/h/keys", UID, 0o755),), (("secrets sealed, key gone", "restore it"),))
    checks = key_checks(facts)
    assert [c.status for c in checks] == [Status.WARN, Status.FAIL]
    assert checks[1].fix == "restore it"


SANDBOX = SandboxFacts(
    BWRAP, None, "/usr/bin/prlimit", BWRAP, "system", "bubblewrap 0.9.0", cgroup="/sys/fs/cgroup/user.slice"
)


def sandbox(**changes: Any) -> SandboxFacts:
    return replace(SANDBOX, **changes)


def test_a_working_sandbox_names_the_bwrap_that_runs() -> None:
    checks = sandbox_checks(sandbox(), needed=True)
    assert statuses(checks) == {"bubblewrap": Status.OK, "sandbox start": Status.OK, "process limit": Status.OK}
    assert "the distribution's: /usr/bin/bwrap, bubblewrap 0.9.0" in checks[0].detail


def test_no_bubblewrap_fails_when_a_server_is_sandboxed_and_only_warns_otherwise() -> None:
    missing = sandbox(system=None, chosen=None, source=None)
    (needed,) = sandbox_checks(missing, needed=True)
    assert needed.status is Status.FAIL
    assert "bubblewrap" in needed.fix
    (spare,) = sandbox_checks(missing, needed=False)
    assert spare.status is Status.WARN
    assert not spare.needed


def test_no_prlimit_fails_when_needed() -> None:
    (check,) = sandbox_checks(sandbox(prlimit=None), needed=True)
    assert check.status is Status.FAIL
    assert "util-linux" in check.fix


def test_bubblewrap_without_user_namespaces_says_how_to_allow_them() -> None:
    facts = sandbox(chosen=None, source=None, probe_error="setting up uid map: Permission denied")
    checks = sandbox_checks(facts, needed=True)
    assert statuses(checks) == {"bubblewrap": Status.OK, "user namespaces": Status.FAIL}
    assert "Permission denied" in checks[1].detail
    assert "userns" in checks[1].fix


def test_a_failed_sandbox_start_fails() -> None:
    checks = sandbox_checks(sandbox(start_error="exit 1: Can't mount proc"), needed=True)
    assert statuses(checks)["sandbox start"] is Status.FAIL


def test_no_pids_cgroup_only_warns() -> None:
    checks = sandbox_checks(sandbox(cgroup=None), needed=True)
    assert statuses(checks)["process limit"] is Status.WARN
    assert exit_code(checks) == 0
    assert "Delegate=yes" in checks[-1].fix


def test_a_server_whose_command_does_not_resolve_fails_with_the_launchers_fix() -> None:
    check = server_check(ServerFacts("ghost", "ghost-server", error="not found on PATH", fix="give its absolute path"))
    assert check.name == "server ghost"
    assert check.status is Status.FAIL
    assert check.fix == "give its absolute path"


def test_a_resolved_server_shows_what_really_runs() -> None:
    check = server_check(ServerFacts("py", "python3 -m srv", "/opt/py/bin/python3.12"))
    assert check.status is Status.OK
    assert check.detail == "python3 -m srv → /opt/py/bin/python3.12"


def test_a_granted_path_that_does_not_exist_fails() -> None:
    check = server_check(ServerFacts("fs", "srv", "/usr/bin/srv", missing_paths=("/data",)))
    assert check.status is Status.FAIL
    assert "/data" in check.detail


def test_sqlite_is_fine_and_postgresql_is_then_not_needed() -> None:
    check = store_check(StoreFacts("sqlite", "/h/audit.db"))
    assert check.status is Status.OK
    assert "PostgreSQL not used" in check.detail
    assert store_check(StoreFacts("sqlite", "/ro/audit.db", "/ro is not writable")).status is Status.FAIL


def test_an_unreachable_postgresql_fails_with_the_fix() -> None:
    check = store_check(StoreFacts("postgresql", "postgresql://u@127.0.0.1:1/x", "Connection refused"))
    assert check.status is Status.FAIL
    assert "start PostgreSQL" in check.fix


def test_postgresql_reports_its_version_and_schema() -> None:
    fresh = store_check(StoreFacts("postgresql", "postgresql://db/x", None, "16.4", ()))
    assert fresh.status is Status.OK
    assert "PostgreSQL 16.4" in fresh.detail
    assert "no Bastion tables yet" in fresh.detail
    full = store_check(StoreFacts("postgresql", "postgresql://db/x", None, "16.4", (*AUDIT_TABLES, "other")))
    assert "5 of 5" in full.detail
    partial = store_check(StoreFacts("postgresql", "postgresql://db/x", None, "16.4", AUDIT_TABLES[:2]))
    assert partial.status is Status.FAIL
    assert AUDIT_TABLES[2] in partial.detail


def test_chromium_is_never_needed() -> None:
    missing = chromium_check(ChromiumFacts(None))
    assert missing.status is Status.WARN
    assert not missing.needed
    assert "BASTION_CHROMIUM" in missing.fix
    wrong = chromium_check(ChromiumFacts(None, chosen="/opt/chrome"))
    assert "/opt/chrome" in wrong.detail
    assert chromium_check(ChromiumFacts("/usr/bin/chromium", "Chromium 1")).status is Status.OK


def test_a_clock_before_2025_fails_and_an_unsynchronized_or_skewed_one_warns() -> None:
    assert [c.status for c in clock_checks(ClockFacts(0.0, True))] == [Status.FAIL]
    assert [c.status for c in clock_checks(ClockFacts(NOW, True))] == [Status.OK]
    assert [c.status for c in clock_checks(ClockFacts(NOW, None))] == [Status.OK]
    assert [c.status for c in clock_checks(ClockFacts(NOW, False))] == [Status.WARN]
    skewed = clock_checks(ClockFacts(NOW, True, database_skew=-42.0))
    assert [c.status for c in skewed] == [Status.WARN]
    assert "-42.0 s" in skewed[0].detail
    assert clock_checks(ClockFacts(NOW, True, database_skew=1.0))[0].status is Status.OK


def test_a_sink_is_reachable_or_fails_with_its_fix() -> None:
    assert sink_check(SinkFacts("sink 1 (webhook, primary)", "127.0.0.1:9")).status is Status.OK
    check = sink_check(SinkFacts("sink 1 (webhook, primary)", "127.0.0.1:9", "Connection refused", "start it"))
    assert check.status is Status.FAIL
    assert check.fix == "start it"
