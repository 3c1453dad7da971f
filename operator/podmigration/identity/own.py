"""The operator's own client certificate (CN system:podmigration:operator): issued from the CA at start, renewed at
2/3 of its validity or as soon as the CA changed, so a renewed CA reaches the helpers without a restart.

Each issue goes to a new directory under a tmpfs (tls.crt, tls.key, ca.crt) and the symlink ``current`` moves to
it; the helper client resolves the link per request, so a connection never pairs a new certificate with an old
key. The previous directory stays for requests still using it; older ones are removed.
"""

from __future__ import annotations

import datetime
import logging
import os
import shutil
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ..api import OPERATOR_CN
from .ca import CertificateAuthority

log = logging.getLogger(__name__)

#: How often the CA is checked for a change, and the retry after a failed renewal.
CHECK_SECONDS = 60.0


class OperatorIdentity:
    def __init__(self, ca: CertificateAuthority, directory: Path, validity_seconds: int) -> None:
        self.ca = ca
        self.directory = directory
        self.validity_seconds = validity_seconds
        self.current = directory / "current"
        self._ca_fingerprint = ""
        self.renew_at = datetime.datetime.now(datetime.UTC)

    def issue(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        fingerprint = self.ca.fingerprint()
        chain = self.ca.sign(key.public_key(), OPERATOR_CN, self.validity_seconds, server=False)
        leaf = x509.load_pem_x509_certificate(chain)
        target = self.directory / f"{leaf.serial_number:x}"
        target.mkdir(mode=0o700, parents=True)
        for name, data in (
            ("tls.crt", chain),
            ("ca.crt", self.ca.bundle()),
            (
                "tls.key",
                key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                ),
            ),
        ):
            fd = os.open(target / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        link = self.directory / ".current.new"
        link.unlink(missing_ok=True)
        link.symlink_to(target.name)
        previous = os.readlink(self.current) if self.current.is_symlink() else None
        link.replace(self.current)
        for old in self.directory.iterdir():
            if old.is_dir() and not old.is_symlink() and old.name not in (target.name, previous):
                shutil.rmtree(old, ignore_errors=True)
        self._ca_fingerprint = fingerprint
        start, end = leaf.not_valid_before_utc, leaf.not_valid_after_utc
        self.renew_at = start + (end - start) * 2 / 3
        log.info("operator identity %s: serial %x, valid until %s", OPERATOR_CN, leaf.serial_number, end)

    def due(self) -> bool:
        return datetime.datetime.now(datetime.UTC) >= self.renew_at or self.ca.fingerprint() != self._ca_fingerprint

    def keep_renewed(self, stop: threading.Event) -> None:
        while not stop.wait(CHECK_SECONDS):
            try:
                if self.due():
                    self.issue()
            except Exception as exc:  # the CA Secret may be mid-update: try again shortly
                log.error("renewing the operator's certificate failed: %s", exc)
