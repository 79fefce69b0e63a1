"""Signed digests over the pack, and samples nobody can steer but anyone can re-derive."""

from __future__ import annotations

import hashlib
import random

import pytest

from bastion.audit.checkpoint import Checkpoint, Signer, sign_checkpoint
from bastion.compliance.attest import MANIFEST_TAG, RESULT_TAG, AttestError, Sampler, check_digest, sign_digest


def test_a_signed_digest_verifies_only_for_its_data_tag_and_a_trusted_key() -> None:
    signer, stranger = Signer.generate("bastion-test"), Signer.generate("bastion-test")
    note = sign_digest(MANIFEST_TAG, b"manifest", signer)
    assert check_digest(MANIFEST_TAG, b"manifest", note, [signer.verifier]) == signer.verifier
    with pytest.raises(AttestError, match="does not match"):
        check_digest(MANIFEST_TAG, b"manifest!", note, [signer.verifier])
    with pytest.raises(AttestError, match="not a"):
        check_digest(RESULT_TAG, b"manifest", note, [signer.verifier])
    with pytest.raises(AttestError, match="no signature by a trusted key"):
        check_digest(MANIFEST_TAG, b"manifest", note, [stranger.verifier])


def test_a_checkpoint_signature_cannot_stand_in_for_a_pack_signature() -> None:
    signer = Signer.generate("bastion-test")
    checkpoint = sign_checkpoint(Checkpoint("bastion/x/1", 3, hashlib.sha256(b"").digest()), signer)
    with pytest.raises(AttestError):
        check_digest(MANIFEST_TAG, b"anything", checkpoint, [signer.verifier])


def test_the_samples_are_the_lowest_scores_whatever_the_order_of_offers() -> None:
    leaves = [(f"log{i % 3}", i, hashlib.sha256(str(i).encode()).digest()) for i in range(500)]
    first, second = Sampler("seed", 25), Sampler("seed", 25)
    for item in leaves:
        first.offer(*item)
    shuffled = leaves[:]
    random.Random(7).shuffle(shuffled)
    for item in shuffled:
        second.offer(*item)
    assert first.chosen() == second.chosen()
    assert len(first.chosen()) == 25
    other = Sampler("another seed", 25)
    for item in leaves:
        other.offer(*item)
    assert other.chosen() != first.chosen(), "a different seed picks different samples"


def test_fewer_entries_than_asked_for_are_all_sampled() -> None:
    sampler = Sampler("s", 25)
    for i in range(3):
        sampler.offer("log", i, bytes([i]) * 32)
    assert sorted(index for _, index, _ in sampler.chosen()) == [0, 1, 2]
    assert Sampler("s", 0).chosen() == []
