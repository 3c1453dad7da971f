"""A throwaway PKI made with the openssl CLI: a CA and certificates it signs for a CN."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def signed_cert(out: Path, ca_dir: Path, cn: str) -> None:
    """Writes ca.crt/tls.crt/tls.key into `out`, the cert signed by the CA in `ca_dir`."""
    out.mkdir(parents=True, exist_ok=True)
    ext = out / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n")
    _openssl(
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        str(out / "tls.key"),
        "-out",
        str(out / "tls.csr"),
        "-subj",
        f"/CN={cn}",
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        str(out / "tls.csr"),
        "-CA",
        str(ca_dir / "ca.crt"),
        "-CAkey",
        str(ca_dir / "ca.key"),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        str(ext),
        "-out",
        str(out / "tls.crt"),
    )
    shutil.copy(ca_dir / "ca.crt", out / "ca.crt")


def make_ca(directory: Path, cn: str) -> Path:
    directory.mkdir(parents=True)
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "1",
        "-keyout",
        str(directory / "ca.key"),
        "-out",
        str(directory / "ca.crt"),
        "-subj",
        f"/CN={cn}",
    )
    return directory
