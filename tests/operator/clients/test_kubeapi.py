"""The fake the operator's tests run on implements the whole KubeApi Protocol, as the real client does."""

import inspect

from pmfakes import FakeKube

from podmigration.clients.kube import Kube
from podmigration.clients.kubeapi import KubeApi

METHODS = sorted(name for name, _ in inspect.getmembers(KubeApi, inspect.isfunction) if not name.startswith("_"))


def test_kube_and_the_fake_have_every_method_of_the_protocol_with_its_parameters():
    assert METHODS
    for name in METHODS:
        wanted = list(inspect.signature(getattr(KubeApi, name)).parameters)
        assert list(inspect.signature(getattr(Kube, name)).parameters) == wanted, name
        assert hasattr(FakeKube, name), f"FakeKube lacks {name}"
