"""The podmigration CA is pinned: when it is an intermediate of a shared issuer (a company CA, a cert-manager
ClusterIssuer), a certificate that issuer signed for someone else, with a podmigration CN, is no identity at all.
Real TLS handshakes over a socket pair, with the contexts the helpers and the operator build."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from pmpki import make_ca
from test_identity import handshake, node_identity

from nodehelper.identity import tlsconfig
from podmigration.api import OPERATOR_CN, helper_cn
from podmigration.identity.ca import CertificateAuthority
from podmigration.identity.own import OperatorIdentity


@pytest.fixture
def cas(tmp_path: Path) -> tuple[CertificateAuthority, CertificateAuthority]:
    """(podmigration's CA, another team's CA), both signed by one shared root."""
    make_ca(tmp_path / "root", "shared-root")
    return (
        make_ca(tmp_path / "podmigration", "podmigration-ca", issuer=tmp_path / "root"),
        make_ca(tmp_path / "other", "other-team-ca", issuer=tmp_path / "root"),
    )


def operator_context(ca: CertificateAuthority, directory: Path) -> ssl.SSLContext:
    """The operator's client side: its own certificate and the ca.crt it verifies helpers with."""
    own = OperatorIdentity(ca, directory, validity_seconds=3600)
    own.issue()
    return tlsconfig.client_context(own.current.resolve())


def test_the_pinned_intermediate_still_verifies_our_own_identities(cas, tmp_path: Path) -> None:
    ours, _ = cas
    helper = node_identity(ours, "worker-1", tmp_path / "scratch")
    helper.renew()
    assert handshake(helper.server_context, operator_context(ours, tmp_path / "op")) == (
        OPERATOR_CN,
        helper_cn("worker-1"),
    )
    assert ours.bundle() == (tmp_path / "podmigration" / "tls.crt").read_bytes()  # not the root


def test_the_operators_cn_from_another_ca_of_the_shared_root_is_refused_by_a_helper(cas, tmp_path: Path) -> None:
    ours, other = cas
    helper = node_identity(ours, "worker-1", tmp_path / "scratch")
    helper.renew()
    with pytest.raises((ssl.SSLError, ConnectionError)):
        handshake(helper.server_context, operator_context(other, tmp_path / "rogue"))


def test_a_helpers_cn_from_another_ca_of_the_shared_root_is_refused_by_the_operator_and_the_helpers(
    cas, tmp_path: Path
) -> None:
    ours, other = cas
    helper = node_identity(ours, "worker-2", tmp_path / "scratch")
    helper.renew()
    rogue = node_identity(other, "worker-1", tmp_path / "scratch")
    rogue.renew()
    for client in (operator_context(ours, tmp_path / "op"), helper.client_context):
        with pytest.raises((ssl.SSLError, ConnectionError)):
            handshake(rogue.server_context, client)
