"""Opening the audit machinery for a gateway process: keys, cipher, log and recovery over a store.

The store is the caller's (`bastion.store.audit_open.open_store` picks its class from the URL):
this module knows only the `AuditStore` protocol.

On start, every log in the store is checked against its witness file (the last checkpoint
signed for it, kept outside the store): a store that is behind a witness was rolled back or
truncated, and the gateway refuses to start. Logs whose process died before signing their
last entries get a sealing checkpoint now, after their signed prefix is confirmed intact.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path

import anyio
import orjson

from bastion.audit.checkpoint import Checkpoint, CheckpointError, Signer, Verifier, sign_checkpoint, verify_note
from bastion.audit.entry import Record
from bastion.audit.keys import Keyring
from bastion.audit.log import AuditLog, witness_dir
from bastion.audit.merkle import CompactRange, perfect_root, range_root
from bastion.audit.payload import AUDIT_MASTER_KEY, PayloadCipher
from bastion.clock import Clock, SystemClock
from bastion.config.model import BastionConfig
from bastion.errors import AuditIntegrityError
from bastion.files import load_master_key, write_private
from bastion.processes import pid_alive
from bastion.store.audit import AuditStore, CheckpointRow, LogRow
from bastion.store.audit_open import inline_append, open_store

__all__ = ["append_once", "config_digest", "open_audit", "read_witnesses", "recover"]

logger = logging.getLogger(__name__)


def read_witnesses(home: Path, store: AuditStore) -> dict[str, str]:
    """Log id → the last checkpoint signed for it, as kept outside the store."""
    directory = witness_dir(home, store)
    if not directory.exists():
        return {}
    return {path.stem: path.read_text(encoding="utf-8") for path in sorted(directory.glob("*.checkpoint"))}


def config_digest(config: BastionConfig) -> str:
    return hashlib.sha256(orjson.dumps(config.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)).hexdigest()


def open_audit(
    config: BastionConfig, home: Path, environ: Mapping[str, str], clock: Clock, store: AuditStore
) -> AuditLog:
    """The gateway's audit log over `store`, once the store is checked against its witnesses (`recover`)."""
    keyring = Keyring(home, f"bastion-{config.gateway.instance}")
    signer = keyring.signer()
    verifiers = keyring.verifiers() or [signer.verifier]
    recover(store, home, signer, verifiers, clock)
    master = load_master_key(AUDIT_MASTER_KEY, home, environ, create=True)
    cipher = PayloadCipher(master) if master is not None else None
    return AuditLog(store, signer, cipher, clock, home, instance=config.gateway.instance, inline=inline_append(store))


async def append_once(
    config: BastionConfig, home: Path, environ: Mapping[str, str], store_url: str | None, record: Record
) -> None:
    """Record one entry from a process that has no gateway running (a CLI command, the dashboard)."""
    store = open_store(home, store_url or config.audit.store)
    try:
        log = open_audit(config, home, environ, SystemClock(), store)
        async with anyio.create_task_group() as tasks:
            await tasks.start(log.run)
            await log.append(record)
            tasks.cancel_scope.cancel()
    finally:
        store.close()


def recover(
    store: AuditStore, home: Path, signer: Signer, verifiers: list[Verifier], clock: Clock
) -> list[tuple[str, int]]:
    """Refuse a rolled-back store; seal the unsigned tails of logs whose process is gone.

    Returns (log, entries sealed) for each log sealed now.
    """
    sealed: list[tuple[str, int]] = []
    witnesses = read_witnesses(home, store)
    logs = store.logs()
    lost = sorted(set(witnesses) - {log.log_id for log in logs})
    if lost:
        raise AuditIntegrityError(lost[0], None, "the store has lost a log that was signed: rolled back or deleted")
    for log in logs:
        latest = store.latest_checkpoint(log.log_id)
        witness = witnesses.get(log.log_id)
        if witness is not None:
            _check_witness(log, witness, latest, verifiers)
        size = store.size(log.log_id)
        signed = latest.size if latest else 0
        if size > signed and not pid_alive(log.pid):
            _seal(store, home, log, latest, size, signer, clock)
            sealed.append((log.log_id, size - signed))
    return sealed


def _check_witness(log: LogRow, witness: str, latest: CheckpointRow | None, verifiers: list[Verifier]) -> None:
    try:
        checkpoint, _ = verify_note(witness, verifiers)
    except CheckpointError as exc:
        raise AuditIntegrityError(log.log_id, None, f"its witness checkpoint does not verify: {exc}") from None
    if latest is None or latest.size < checkpoint.size:
        raise AuditIntegrityError(
            log.log_id,
            checkpoint.size,
            f"the store is behind the last signed checkpoint (size {checkpoint.size}): rolled back or truncated",
        )


def _seal(
    store: AuditStore, home: Path, log: LogRow, latest: CheckpointRow | None, size: int, signer: Signer, clock: Clock
) -> None:
    def subtree(level: int, idx: int) -> bytes:
        return perfect_root(store.subtree_hashes(log.log_id, level, idx))

    if latest is not None and range_root(0, latest.size, subtree) != latest.root:
        raise AuditIntegrityError(log.log_id, latest.size, "the signed prefix no longer matches its checkpoint")
    root = CompactRange.at(size, subtree).root()
    note = sign_checkpoint(Checkpoint(log.origin, size, root), signer)
    store.add_checkpoint(CheckpointRow(log.log_id, size, root, note, clock.now()))
    write_private(witness_dir(home, store) / f"{log.log_id}.checkpoint", note.encode("utf-8"))
    logger.warning(
        "audit log %s: sealed %d entries its process left unsigned", log.log_id, size - (latest.size if latest else 0)
    )
