"""`fleetdeck redis-users DIR --tls NAMES`: a private CA and Redis's certificate for NAMES in DIR/tls/.

Writes DIR/tls/ca.crt (what every service trusts), ca.key (stays with the operator: it signs the next
server certificate), redis.crt and redis.key (Redis's). A run again keeps the CA, and keeps
redis.crt while it names the same hosts and chains to that CA (else signs a new one with it);
`--rotate` makes a new CA and certificate, which every service then needs.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVER_DAYS = 825  # the longest validity clients that follow the CA/Browser rules accept
_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Name = Address | str


@dataclass(frozen=True)
class TlsFiles:
    """Where the CA's and Redis's certificate and key are."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


def tls_files(folder: Path) -> TlsFiles:
    return TlsFiles(folder / "ca.crt", folder / "ca.key", folder / "redis.crt", folder / "redis.key")


def parse_names(names: Iterable[str]) -> list[Name]:
    """Each name as an IP address or a DNS name, in order and once; ValueError naming a bad one."""
    found: list[Name] = []
    for text in (n.strip() for n in names):
        if not text:
            continue
        name: Name
        try:
            name = ipaddress.ip_address(text.strip("[]"))
        except ValueError:
            name = text.lower().rstrip(".")
            if len(name) > 253 or not all(_DNS_LABEL.match(label) for label in name.split(".")):
                raise ValueError(f"{text!r} is neither an IP address nor a DNS name") from None
        if name not in found:
            found.append(name)
    if not found:
        raise ValueError("no host name or address for Redis's certificate")
    return found


def _alt_names(names: Sequence[Name]) -> x509.SubjectAlternativeName:
    return x509.SubjectAlternativeName(
        [x509.DNSName(n) if isinstance(n, str) else x509.IPAddress(n) for n in names]
    )


def _named(certificate: x509.Certificate) -> set[Name]:
    try:
        alt = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    addresses = alt.get_values_for_type(x509.IPAddress)
    return {*alt.get_values_for_type(x509.DNSName), *(a for a in addresses if isinstance(a, Address))}


def _builder(
    subject: str, issuer: x509.Name, public: ec.EllipticCurvePublicKey, days: int
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # a client's clock a little behind
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )


def _usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def make_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed CA that may sign server certificates only (no intermediate CAs)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fleetdeck Redis CA")])
    certificate = (
        _builder("fleetdeck Redis CA", name, key.public_key(), CA_DAYS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def make_server_cert(
    names: Sequence[Name], ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Redis's certificate for `names`, signed by the CA, good for a TLS server only."""
    key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    certificate = (
        _builder("fleetdeck Redis", ca.subject, key.public_key(), SERVER_DAYS)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(_alt_names(names), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return certificate, key


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load(files: TlsFiles) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    """The CA written before, if both its files are there and its key is an EC key."""
    try:
        certificate = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
        key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
    except (OSError, ValueError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != certificate.public_key():
        return None
    return certificate, key


def _server_kept(files: TlsFiles, names: Sequence[Name], ca: x509.Certificate) -> bool:
    """True if redis.crt and its key are there, name exactly `names` and were signed by `ca`."""
    try:
        certificate = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
        key = serialization.load_pem_private_key(files.server_key.read_bytes(), password=None)
        certificate.verify_directly_issued_by(ca)
    except (OSError, ValueError, TypeError, InvalidSignature):  # any doubt: sign a new one
        return False
    expires = certificate.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    same_key = key.public_key() == certificate.public_key()
    return same_key and _named(certificate) == set(names) and expires > datetime.timedelta(days=30)


def write_certificates(
    folder: Path, names: Sequence[Name], rotate: bool, write: Callable[[Path, bytes, int], None]
) -> TlsFiles:
    """The CA (kept unless `rotate`) and Redis's certificate for `names` in `folder`, by `write(path,
    data, mode)`; keys 0600, certificates 0644."""
    folder.mkdir(parents=True, exist_ok=True)
    files = tls_files(folder)
    kept = None if rotate else _load(files)
    if kept is None:
        ca, ca_key = make_ca()
        write(files.ca_key, _pem_key(ca_key), 0o600)
        write(files.ca_cert, ca.public_bytes(serialization.Encoding.PEM), 0o644)
    else:
        ca, ca_key = kept
    if kept is None or not _server_kept(files, names, ca):
        certificate, key = make_server_cert(names, ca, ca_key)
        write(files.server_key, _pem_key(key), 0o600)
        write(files.server_cert, certificate.public_bytes(serialization.Encoding.PEM), 0o644)
    return files
