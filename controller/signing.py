"""The controller's signing key: Ed25519, kept in files outside the database, rotatable.

Layout of the key folder (``Settings.signing_dir``, default ``{data_dir}/secrets/signing``):

    current.key   the key that signs (PKCS#8 PEM, mode 0600)
    next.key      during a rotation only: the key that will sign next (mode 0600)
    sequence      the highest sequence number reserved so far (see :class:`SequenceClock`);
                  ``sequence.{replica}`` for each controller replica sharing the folder

Rotation (docs/security.md): ``loaxa controller rotate-key`` makes ``next.key``; nodes are
given both public keys (``loaxa fleet provision`` writes every key of the folder into each
node config) and trust either; ``loaxa controller finish-rotation`` makes the next key the
current one and deletes the old one; provision again and the nodes trust only the new key.
A running controller notices the change of ``current.key`` at its next signature.

This module needs nothing but ``cryptography``: provisioning (firmware_config/provision.py)
uses it to create the key before it writes the node configs.
"""

from __future__ import annotations

import base64
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mqtt_contract import MAX_INT64, Signature, Signed, Target, key_id

log = logging.getLogger(__name__)
M = TypeVar("M", bound=Signed)

CURRENT, NEXT, SEQUENCE = "current.key", "next.key", "sequence"
SEQUENCE_RESERVE_US = 10_000_000
"""Sequence numbers are reserved on disk this far ahead (10 s of µs): one small write per
10 s of signing, not one per message, and a restart still starts above every number used."""


class KeyFolderError(RuntimeError):
    """The key folder is not in the state the asked step needs (e.g. no rotation going)."""


def _write_private(path: Path, key: Ed25519PrivateKey) -> None:
    """Write a private key readable by its owner only (created 0600, never wider)."""
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _read_private(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFolderError(f"{path.name} is not an Ed25519 key")
    return key


def public_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw)


def public_text(key: Ed25519PrivateKey) -> str:
    """The public key as a node config lists it (base64 of the 32 raw bytes)."""
    return base64.b64encode(public_bytes(key)).decode()


@dataclass(frozen=True)
class KeyFolder:
    """The key files; every step is idempotent so a step run twice does no harm."""

    root: Path

    def _path(self, name: str) -> Path:
        return self.root / name

    def ensure(self) -> Ed25519PrivateKey:
        """The current key, created on first use."""
        path = self._path(CURRENT)
        if not path.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            os.chmod(self.root, 0o700)
            _write_private(path, Ed25519PrivateKey.generate())
            log.info("created the controller's signing key in %s", self.root)
        return _read_private(path)

    def next(self) -> Ed25519PrivateKey | None:
        path = self._path(NEXT)
        return _read_private(path) if path.exists() else None

    def rotate(self) -> Ed25519PrivateKey:
        """Start a rotation: make the next key (or return the one already made)."""
        self.ensure()
        existing = self.next()
        if existing is not None:
            return existing
        key = Ed25519PrivateKey.generate()
        _write_private(self._path(NEXT), key)
        return key

    def finish(self) -> Ed25519PrivateKey:
        """End a rotation: the next key signs from now on; the old one is deleted."""
        if not self._path(NEXT).exists():
            raise KeyFolderError("no rotation is going on (run rotate-key first)")
        os.replace(self._path(NEXT), self._path(CURRENT))
        return self.ensure()

    def public_keys(self) -> list[str]:
        """What nodes must trust now: the current key, and the next one during a rotation."""
        keys = [self.ensure()]
        if (upcoming := self.next()) is not None:
            keys.append(upcoming)
        return [public_text(k) for k in keys]

    def current_stamp(self) -> tuple[int, int]:
        st = self._path(CURRENT).stat()
        return st.st_ino, st.st_mtime_ns


class SequenceClock:
    """Sequence numbers for signatures: the signing time in µs, strictly increasing, and
    never below a number already used, across restarts and clock steps back (the highest
    reserved number is kept in a file). Nodes compare them per signer key and stream."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            self._reserved = int(path.read_text().strip())
        except (FileNotFoundError, ValueError):
            self._reserved = 0
        self._last = self._reserved

    def next(self) -> int:
        with self._lock:
            self._last = min(max(self._last + 1, time.time_ns() // 1000), MAX_INT64)
            if self._last > self._reserved:
                self._reserved = min(self._last + SEQUENCE_RESERVE_US, MAX_INT64)
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(f"{self._reserved}\n")
                os.replace(tmp, self.path)
            return self._last


class Signer:
    """Signs plans and commands with the current key (re-read when the file changes)."""

    def __init__(self, folder: Path, replica: str | None = None) -> None:
        """``replica``: the signing process's name when several share ``folder`` (one
        sequence each: a shared one would let the replica that read another's
        reservation run ahead of it, and nodes would refuse the other's messages)."""
        self.folder = KeyFolder(folder)
        self._key = self.folder.ensure()
        self._stamp = self.folder.current_stamp()
        self.replica = replica
        name = SEQUENCE if replica is None else f"{SEQUENCE}.{replica}"
        self.sequence = SequenceClock(folder / name)
        self._lock = threading.Lock()

    @property
    def key_id(self) -> str:
        return key_id(public_bytes(self._current()))

    def _current(self) -> Ed25519PrivateKey:
        with self._lock:
            stamp = self.folder.current_stamp()
            if stamp != self._stamp:
                self._key, self._stamp = self.folder.ensure(), stamp
                log.info("signing key changed: now %s", key_id(public_bytes(self._key)))
            return self._key

    def sign(self, message: M, commune: str, target: Target, to: str | None,
                        ttl_s: float) -> M:
        """A signed copy of ``message`` for ``commune`` and the target given."""
        key = self._current()
        now_ms = time.time_ns() // 1_000_000
        unsigned = Signature(commune=commune, target=target, to=to,
                             seq=self.sequence.next(), signed_ms=now_ms,
                             expires_ms=now_ms + int(ttl_s * 1000),
                             key_id=key_id(public_bytes(key)), replica=self.replica)
        draft = message.model_copy(update={"sig": unsigned})
        draft._canonical = None
        signature = key.sign(draft.signed_bytes())
        sig = unsigned.model_copy(update={"signature": base64.b64encode(signature).decode()})
        signed = message.model_copy(update={"sig": sig})
        signed._canonical = None
        return signed
