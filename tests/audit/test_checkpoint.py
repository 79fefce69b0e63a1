"""Checkpoints and signed notes: the format round-trips, and forgeries do not verify."""

from __future__ import annotations

import base64

import pytest

from bastion.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    Signer,
    Verifier,
    parse_checkpoint,
    sign_checkpoint,
    verify_note,
)

ROOT = bytes(range(32))


def test_a_signed_checkpoint_has_the_c2sp_shape_and_verifies() -> None:
    signer = Signer.generate("bastion-test")
    note = sign_checkpoint(Checkpoint("example.com/log", 42, ROOT), signer)
    lines = note.split("\n")
    assert lines[:3] == ["example.com/log", "42", base64.b64encode(ROOT).decode()]
    assert lines[3] == ""
    assert lines[4].startswith("\u2014 bastion-test ")
    checkpoint, verifier = verify_note(note, [signer.verifier])
    assert checkpoint == Checkpoint("example.com/log", 42, ROOT)
    assert verifier == signer.verifier


def test_a_changed_size_or_root_breaks_the_signature() -> None:
    signer = Signer.generate("k")
    note = sign_checkpoint(Checkpoint("o", 42, ROOT), signer)
    for forged in (
        note.replace("\n42\n", "\n43\n"),
        note.replace(base64.b64encode(ROOT).decode(), base64.b64encode(bytes(32)).decode()),
    ):
        with pytest.raises(CheckpointError):
            verify_note(forged, [signer.verifier])


def test_a_signature_by_another_key_is_not_trusted() -> None:
    trusted, other = Signer.generate("k"), Signer.generate("k")
    note = sign_checkpoint(Checkpoint("o", 1, ROOT), other)
    with pytest.raises(CheckpointError):
        verify_note(note, [trusted.verifier])


def test_verifier_keys_round_trip_and_a_wrong_key_id_is_refused() -> None:
    verifier = Signer.generate("bastion").verifier
    assert Verifier.decode(verifier.encode()) == verifier
    name, _id, key = verifier.encode().split("+", 2)
    with pytest.raises(CheckpointError):
        Verifier.decode(f"{name}+00000000+{key}")


@pytest.mark.parametrize(
    "body",
    [
        "o\n42\n",
        "\n1\n" + base64.b64encode(ROOT).decode() + "\n",
        "o\n-1\nAAAA\n",
        "o\n01\n" + base64.b64encode(ROOT).decode() + "\n",
        "o\n1\nnot base64!\n",
        "o\n1\nAAAA\n",
    ],
)
def test_malformed_checkpoints_are_refused(body: str) -> None:
    with pytest.raises(CheckpointError):
        parse_checkpoint(body)
