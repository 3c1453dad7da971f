import kopf

from podmigration.clients.events import kopf_events


def test_long_messages_are_left_to_kopf_which_keeps_head_and_tail(monkeypatch):
    posted = []
    monkeypatch.setattr(kopf, "event", lambda obj, **kwargs: posted.append(kwargs))
    message = "start " + "x" * 2000 + " the end"
    kopf_events({"kind": "Pod"}, type="Warning", reason="Failed", message=message)
    assert posted == [{"type": "Warning", "reason": "Failed", "message": message}]
