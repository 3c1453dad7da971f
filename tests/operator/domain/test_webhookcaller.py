"""Who the webhooks answer: a client certificate's CN from the allow-list, nobody else (docs/security.md)."""

import pytest

from podmigration.domain.webhookcaller import caller_denial, refused_review

ALLOWED = ("kube-apiserver-admission",)


def peer(cn: str) -> dict:
    """A peer certificate as ssl's getpeercert() gives it."""
    return {"subject": ((("organizationName", "system:nodes"),), (("commonName", cn),))}


def test_the_api_servers_admission_certificate_is_answered():
    assert caller_denial(peer("kube-apiserver-admission"), ALLOWED) is None


@pytest.mark.parametrize(
    "cn", ["system:node:worker-1", "kube-apiserver-kubelet-client", "kube-apiserver-admission.evil"]
)
def test_another_certificate_of_the_cluster_ca_is_refused(cn):
    """The cluster CA signs the kubelets' and users' client certificates too: verified is not enough."""
    assert repr(cn) in caller_denial(peer(cn), ALLOWED)


@pytest.mark.parametrize("cert", [None, {}, {"subject": ((("organizationName", "x"),),)}])
def test_no_certificate_or_no_name_is_refused(cert):
    assert "no client certificate" in caller_denial(cert, ALLOWED)


def test_the_refusal_answers_the_review_and_names_nothing_of_the_cluster():
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u-1"}}
    answer = refused_review(review, "the admission webhooks answer only the API server, not 'x'")
    assert answer == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {
            "uid": "u-1",
            "allowed": False,
            "status": {"code": 403, "message": "the admission webhooks answer only the API server, not 'x'"},
        },
    }
    assert refused_review({"request": "garbage"}, "no")["response"]["uid"] == ""
