"""A helper whose workers are all busy answers 503 with Retry-After: the operator waits and asks again."""

from pathlib import Path

import pytest
import requests

from podmigration.clients.helperclient import BUSY_ATTEMPTS, HelperClient
from podmigration.domain.helpers import Helper, HelperError


class Answers:
    def __init__(self, statuses):
        self.statuses, self.calls = list(statuses), 0

    def request(self, *args, **kwargs):
        self.calls += 1
        response = requests.Response()
        response.status_code = self.statuses.pop(0)
        response.headers["Retry-After"] = "2"
        response._content = b'{"error": "busy"}' if response.status_code == 503 else b'{"ok": true}'
        return response


def client(statuses):
    helper_client = HelperClient.__new__(HelperClient)
    helper_client._session, helper_client._tls = Answers(statuses), Path("/nonexistent")
    helper_client._expected = {}
    helper_client.waits = []
    helper_client._sleep = helper_client.waits.append
    return helper_client


def test_busy_helper_is_asked_again_after_the_wait_it_names():
    busy = client([503, 503, 200])
    assert busy.thaw(Helper("worker-1", "https://10.0.0.1:9443", True), "uid") == {"ok": True}
    assert busy.waits == [2.0, 2.0] and busy._session.calls == 3


def test_a_helper_busy_for_too_long_fails_the_call():
    busy = client([503] * BUSY_ATTEMPTS)
    with pytest.raises(HelperError, match="HTTP 503") as failed:
        busy.thaw(Helper("worker-1", "https://10.0.0.1:9443", True), "uid")
    assert failed.value.status == 503 and busy._session.calls == BUSY_ATTEMPTS
