"""Test certificates made with the openssl CLI (cryptography refuses to sign with SHA-1).

OpenSSL 3.0's `x509`/`req` lack -not_before/-not_after, so every certificate is issued with
`openssl ca -startdate -enddate` from a throw-away minimal CA database: self-signed ones with
`-selfsign`, leaves with the CA's key. The name goes into CN and into subjectAltName (IP: for
an address, DNS: otherwise).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CertFiles",
    "ca_and_leaf",
    "cert_set",
    "expired_cert",
    "make_cert",
    "mismatched_cert",
    "not_yet_valid_cert",
    "sha1_cert",
    "valid_cert",
    "weak_key_cert",
]

OPENSSL_TIMEOUT = 30.0
MISMATCH_NAME = "wrong-name.rdprobe.invalid"


@dataclass(frozen=True)
class CertFiles:
    """PEM files of one certificate: `cert`, its private `key`, and the issuing `ca` if any."""

    cert: Path
    key: Path
    name: str
    ca: Path | None = None


_CONFIG = """\
[ ca ]
default_ca = rig_ca

[ rig_ca ]
database = {db}/index.txt
new_certs_dir = {db}
serial = {db}/serial
policy = rig_policy
unique_subject = no
email_in_dn = no
copy_extensions = none
default_md = sha256

[ rig_policy ]
commonName = supplied

[ rig_leaf ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
{san}

[ rig_ca_ext ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
"""


def _openssl(*args: str | Path) -> None:
    argv = ["openssl", *(str(a) for a in args)]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=OPENSSL_TIMEOUT)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{res.stderr.strip()}")


def _asn1_time(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y%m%d%H%M%SZ")


def _san(names: list[str]) -> str:
    parts = []
    for n in names:
        try:
            ipaddress.ip_address(n)
            parts.append(f"IP:{n}")
        except ValueError:
            parts.append(f"DNS:{n}")
    return f"subjectAltName = {', '.join(parts)}" if parts else ""


def make_cert(
    directory: Path,
    name: str,
    *,
    stem: str | None = None,
    san: list[str] | None = None,
    bits: int = 2048,
    digest: str = "sha256",
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    issuer: CertFiles | None = None,
    is_ca: bool = False,
) -> CertFiles:
    """Issue one RSA certificate with CN=`name`; self-signed unless `issuer` is given.

    Defaults: valid from one hour ago for 397 days (the longest a public CA issues; a
    shorter default made every rig server's report carry cert.expiring_soon), SAN = [name], 2048-bit key, SHA-256.
    Files are DIRECTORY/STEM.crt and DIRECTORY/STEM.key (stem defaults to a safe `name`).
    """
    directory.mkdir(parents=True, exist_ok=True)
    stem = stem or re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = not_before or now - dt.timedelta(hours=1)
    end = not_after or now + dt.timedelta(days=397)
    db = directory / f".ca-{stem}"
    db.mkdir(exist_ok=True)
    (db / "index.txt").write_text("")
    (db / "serial").write_text("01\n")
    config = db / "openssl.cnf"
    config.write_text(_CONFIG.format(db=db, san=_san(san if san is not None else [name])))
    cert, key, csr = directory / f"{stem}.crt", directory / f"{stem}.key", db / "req.csr"
    _openssl(
        "req", "-new", "-newkey", f"rsa:{bits}", "-nodes", "-keyout", key, "-out", csr,
        "-subj", f"/CN={name}", "-config", config,
    )  # fmt: skip
    args: list[str | Path] = [
        "ca", "-batch", "-config", config, "-notext", "-rand_serial", "-md", digest,
        "-startdate", _asn1_time(start), "-enddate", _asn1_time(end),
        "-extensions", "rig_ca_ext" if is_ca else "rig_leaf", "-in", csr, "-out", cert,
    ]  # fmt: skip
    if issuer is None:
        args += ["-selfsign", "-keyfile", key]
    else:
        args += ["-cert", issuer.cert, "-keyfile", issuer.key]
    _openssl(*args)
    key.chmod(0o600)
    return CertFiles(cert=cert, key=key, name=name, ca=issuer.cert if issuer else None)


def valid_cert(directory: Path, name: str) -> CertFiles:
    """Self-signed, CN and SAN = name, 2048-bit RSA, SHA-256, valid now."""
    return make_cert(directory, name, stem="valid")


def expired_cert(directory: Path, name: str) -> CertFiles:
    """Self-signed, valid from 60 days ago until 30 days ago."""
    now = dt.datetime.now(dt.UTC)
    return make_cert(
        directory, name, stem="expired",
        not_before=now - dt.timedelta(days=60), not_after=now - dt.timedelta(days=30),
    )  # fmt: skip


def not_yet_valid_cert(directory: Path, name: str) -> CertFiles:
    """Self-signed, valid from 30 days ahead until 60 days ahead."""
    now = dt.datetime.now(dt.UTC)
    return make_cert(
        directory, name, stem="not_yet_valid",
        not_before=now + dt.timedelta(days=30), not_after=now + dt.timedelta(days=60),
    )  # fmt: skip


def mismatched_cert(directory: Path, name: str) -> CertFiles:
    """Self-signed for another name (CN and SAN = MISMATCH_NAME); `name` is recorded only."""
    made = make_cert(directory, MISMATCH_NAME, stem="mismatch")
    return CertFiles(cert=made.cert, key=made.key, name=MISMATCH_NAME)


def weak_key_cert(directory: Path, name: str) -> CertFiles:
    """Self-signed with a 1024-bit RSA key (servers load it only at @SECLEVEL=0)."""
    return make_cert(directory, name, stem="rsa1024", bits=1024)


def sha1_cert(directory: Path, name: str) -> CertFiles:
    """Self-signed with a SHA-1 signature (servers load it only at @SECLEVEL=0)."""
    return make_cert(directory, name, stem="sha1", digest="sha1")


def ca_and_leaf(directory: Path, name: str) -> tuple[CertFiles, CertFiles]:
    """A small CA ('rdprobe test CA') and a leaf for `name` signed by it."""
    ca = make_cert(directory, "rdprobe test CA", stem="ca", san=[], is_ca=True)
    leaf = make_cert(directory, name, stem="leaf", issuer=ca)
    return ca, leaf


def cert_set(directory: Path, name: str) -> dict[str, CertFiles]:
    """Every kind above, keyed: valid, expired, not_yet_valid, mismatch, rsa1024, sha1, ca, leaf."""
    ca, leaf = ca_and_leaf(directory, name)
    return {
        "valid": valid_cert(directory, name),
        "expired": expired_cert(directory, name),
        "not_yet_valid": not_yet_valid_cert(directory, name),
        "mismatch": mismatched_cert(directory, name),
        "rsa1024": weak_key_cert(directory, name),
        "sha1": sha1_cert(directory, name),
        "ca": ca,
        "leaf": leaf,
    }
