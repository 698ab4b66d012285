"""The fleet's own certificate authority: one CA, a broker certificate, one client
certificate per account, and a revocation list the broker reads (``crlfile``).

Everything is made with the ``cryptography`` package (no openssl command line). Keys are
ECDSA P-256: a Pi Zero signs a handshake in a few milliseconds, and a thousand simulated
nodes can connect in seconds. Files holding a private key are written mode 0600.

Why a private CA and not a public one: the broker sits on a commune's LAN or behind a 4G
router, often with no DNS name a public CA would sign, and only fleet devices should be
able to open a TLS session at all (``require_certificate``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 20 * 365
CERT_DAYS = 10 * 365
CRL_DAYS = 10 * 365
"""OpenSSL refuses every client once the CRL's next update has passed, so the list is
issued for as long as the certificates live; each revocation re-issues it."""
ORGANISATION = "loaxa fleet"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` readable by its owner only, atomically (no moment at 0644)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def write_public(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o644)
    tmp.replace(path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _san(names: list[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


@dataclass(frozen=True)
class IssuedCert:
    cert: Path
    key: Path


class FleetCA:
    """The CA of one fleet, kept in ``directory`` (``ca.key`` 0600, ``ca.crt``, ``crl.pem``
    and ``revoked.json``, the serials taken back)."""

    def __init__(self, directory: Path, label: str = "loaxa fleet CA") -> None:
        self.directory = directory
        self.key_path, self.cert_path = directory / "ca.key", directory / "ca.crt"
        self.crl_path, self.revoked_path = directory / "crl.pem", directory / "revoked.json"
        if not self.key_path.exists():
            self._create(label)
        self.key = serialization.load_pem_private_key(self.key_path.read_bytes(), None)
        self.cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        if not self.crl_path.exists():
            self.write_crl()

    def _create(self, label: str) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = _name(label)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(_now() - dt.timedelta(minutes=5))
                .not_valid_after(_now() + dt.timedelta(days=CA_DAYS))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False,
                                             key_agreement=False, key_cert_sign=True,
                                             crl_sign=True, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                               critical=False)
                .sign(key, hashes.SHA256()))
        write_private(self.key_path, _key_pem(key))
        write_public(self.cert_path, _cert_pem(cert))

    # issuing --------------------------------------------------------------------------
    def issue(self, cert_path: Path, key_path: Path, common_name: str, *,
              server_names: list[str] | None = None) -> IssuedCert:
        """A certificate for ``common_name``: a server one (``server_names`` become its
        SANs, which clients check) or a client one (no names: only "a fleet device")."""
        key = ec.generate_private_key(ec.SECP256R1())
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server_names else (
            ExtendedKeyUsageOID.CLIENT_AUTH)
        builder = (x509.CertificateBuilder().subject_name(_name(common_name))
                   .issuer_name(self.cert.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(_now() - dt.timedelta(minutes=5))
                   .not_valid_after(_now() + dt.timedelta(days=CERT_DAYS))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                                  critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                       self.key.public_key()), critical=False))  # type: ignore[arg-type]
        if server_names:
            builder = builder.add_extension(_san(server_names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())  # type: ignore[arg-type]
        write_private(key_path, _key_pem(key))
        write_public(cert_path, _cert_pem(cert))
        return IssuedCert(cert_path, key_path)

    def ensure(self, cert_path: Path, key_path: Path, common_name: str, *,
               server_names: list[str] | None = None) -> IssuedCert:
        """Keep a valid certificate of this CA (same names, not revoked); issue otherwise."""
        if cert_path.exists() and key_path.exists():
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            if (cert.issuer == self.cert.subject and cert.serial_number not in self.revoked()
                    and sorted(cert_names(cert)) == sorted(server_names or [])
                    and cert.not_valid_after_utc > _now() + dt.timedelta(days=30)):
                return IssuedCert(cert_path, key_path)
        return self.issue(cert_path, key_path, common_name, server_names=server_names)

    # revoking -------------------------------------------------------------------------
    def revoked(self) -> dict[int, str]:
        if not self.revoked_path.exists():
            return {}
        return {int(k): v for k, v in json.loads(self.revoked_path.read_text()).items()}

    def revoke(self, cert_path: Path) -> int:
        """Put ``cert_path``'s serial on the list and re-issue the CRL; return the serial."""
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        revoked = self.revoked()
        revoked[cert.serial_number] = _now().isoformat()
        write_public(self.revoked_path, json.dumps({str(k): v for k, v in revoked.items()},
                                                   indent=1).encode())
        self.write_crl()
        return cert.serial_number

    def write_crl(self) -> None:
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self.cert.subject)
                   .last_update(_now() - dt.timedelta(minutes=5))
                   .next_update(_now() + dt.timedelta(days=CRL_DAYS)))
        for serial, when in sorted(self.revoked().items()):
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial)
                .revocation_date(dt.datetime.fromisoformat(when)).build())
        crl = builder.sign(self.key, hashes.SHA256())  # type: ignore[arg-type]
        write_public(self.crl_path, crl.public_bytes(serialization.Encoding.PEM))


def cert_names(cert: x509.Certificate) -> list[str]:
    """The SANs of ``cert`` as strings (DNS names and IP addresses)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(v) for v in san.get_values_for_type(x509.DNSName)] + [
        str(v) for v in san.get_values_for_type(x509.IPAddress)]
