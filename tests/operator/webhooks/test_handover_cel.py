"""The hand-over webhook's match condition is CEL built from PodMigration status: evaluated here by a real CEL
implementation, it matches exactly the listed pods, and no name in the status can change what it says."""

import celpy
import pytest

from podmigration.domain import handover


def matches(expression: str, namespace: str, name: str) -> bool:
    env = celpy.Environment()
    program = env.program(env.compile(expression))
    return bool(program.evaluate({"object": celpy.json_to_cel({"metadata": {"namespace": namespace, "name": name}})}))


def test_the_listed_pods_and_only_they_match():
    expression = handover.match_expression([("default", "web-0"), ("shop", "db-1.x")])
    assert matches(expression, "default", "web-0") and matches(expression, "shop", "db-1.x")
    assert not matches(expression, "default", "web-1") and not matches(expression, "shop", "web-0")
    assert handover.match_expression([]) == "false"


@pytest.mark.parametrize(
    "namespace, name",
    [
        ("default", "x'] || true || ['"),  # breaks out of a single-quoted literal
        ("default", 'x"] || true || ["'),  # ... or a double-quoted one
        ("default", "x\\"),
        ("default", "Web-0"),
        ("default", "a" * 254),
        ("default", "-web"),
        ("de'fault", "web-0"),
        ("a.b", "web-0"),  # a namespace is a DNS-1123 label: no dot
    ],
)
def test_a_name_no_pod_can_have_is_left_out_and_matches_nothing(namespace, name):
    expression = handover.match_expression([(namespace, name), ("default", "web-0")])
    assert expression.count("/") == 2  # the join in the expression, and default/web-0 alone
    assert matches(expression, "default", "web-0")
    assert not matches(expression, "default", "web-1") and not matches(expression, namespace, name)
    assert handover.match_expression([(namespace, name)]) == "false"


@pytest.mark.parametrize("value", ["plain", "it's", "back\\slash", "\\'] || true || ['", "'"])
def test_a_cel_string_literal_reads_back_as_the_value_itself(value):
    env = celpy.Environment()
    assert env.program(env.compile(handover.cel_string(value))).evaluate({}) == value
