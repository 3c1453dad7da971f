"""Every API call of the operator carries a timeout: a hung connection must not outlive a migration's deadline."""

from kubernetes.dynamic import DynamicClient

from podmigration.clients import kube


def test_requests_get_the_default_timeout_unless_they_bring_one(monkeypatch):
    seen = []
    monkeypatch.setattr(
        DynamicClient,
        "request",
        lambda self, method, path, body=None, **params: seen.append(params.get("_request_timeout")),
    )
    client = kube._TimedDynamicClient.__new__(kube._TimedDynamicClient)
    client.request("get", "/api/v1/pods")
    client.request("get", "/api/v1/pods", _request_timeout=(1, 2))
    assert seen == [kube.API_TIMEOUT, (1, 2)]
