"""The audit entry: public fields in canonical JSON, secret values only as salted commitments."""

from __future__ import annotations

import hashlib

import orjson

from bastion.audit.entry import ENTRY_VERSION, Kind, Record, commit, encode_entry, format_time, index_columns, seal


def test_a_commitment_is_sha256_over_the_tag_salt_name_and_canonical_value() -> None:
    expected = hashlib.sha256(b"bastion-commitment-v1\x00" + b"salt" + b"args\x00" + b'{"a":1}').hexdigest()
    assert commit(b"salt", "args", b'{"a":1}') == expected


def test_sealing_commits_to_each_secret_and_the_payload_lets_a_reader_recheck_them() -> None:
    sealed = seal(Record(Kind.CALL_INTENT, {"tool": "t"}, {"arguments": {"b": 2, "a": 1}}))
    assert sealed.payload is not None
    payload = orjson.loads(sealed.payload)
    assert payload["values"] == {"arguments": '{"a":1,"b":2}'}
    salt = bytes.fromhex(payload["salt"])
    assert len(salt) == 16
    assert sealed.commitments == {"arguments": commit(salt, "arguments", b'{"a":1,"b":2}')}


def test_two_seals_of_one_value_differ_because_each_has_its_own_salt() -> None:
    record = Record(Kind.CALL_OUTCOME, {}, {"result": "same"})
    assert seal(record).commitments != seal(record).commitments


def test_a_record_without_secrets_has_no_commitments_and_no_payload() -> None:
    sealed = seal(Record(Kind.GATEWAY_START, {"version": "1"}))
    assert (sealed.commitments, sealed.payload) == ({}, None)


def test_an_entry_is_canonical_json_with_its_version_index_log_time_and_kind() -> None:
    sealed = seal(Record(Kind.GATEWAY_STOP, {"z": 1}))
    raw = encode_entry(7, 1_700_000_000.1234, "abcd", sealed)
    assert raw == (
        b'{"i":7,"kind":"gateway.stop","log":"abcd","t":1700000000123,"v":' + str(ENTRY_VERSION).encode() + b',"z":1}'
    )


def test_times_are_utc_to_the_millisecond() -> None:
    assert format_time(0) == "1970-01-01T00:00:00.000Z"
    assert format_time(1_700_000_000.5) == "2023-11-14T22:13:20.500Z"


def test_index_columns_take_only_text_and_ignore_anything_else() -> None:
    fields = {"server": {"name": "git"}, "tool": "log", "client": "cli", "decision": {"action": "allow"}}
    assert index_columns(fields) == ("git", "log", "cli", "allow")
    assert index_columns({"server": "git", "tool": 3, "decision": {"action": None}}) == (None, None, None, None)
