from pathlib import Path

import yaml

from podmigration import api
from podmigration.api import phases

CRD = yaml.safe_load((Path(__file__).parents[3] / "crds" / "podmigration.yaml").read_text())
VERSION = CRD["spec"]["versions"][0]
SCHEMA = VERSION["schema"]["openAPIV3Schema"]
SPEC = SCHEMA["properties"]["spec"]
STATUS = SCHEMA["properties"]["status"]["properties"]


def test_names_match_the_operator():
    assert CRD["metadata"]["name"] == f"{api.PLURAL}.{api.GROUP}"
    assert CRD["spec"]["group"] == api.GROUP and VERSION["name"] == api.VERSION
    assert CRD["spec"]["names"]["kind"] == api.KIND and CRD["spec"]["names"]["shortNames"] == ["pmig"]
    assert CRD["spec"]["scope"] == "Namespaced"
    assert VERSION["subresources"] == {"status": {}}


def test_spec_validation():
    assert SPEC["required"] == ["podName"]
    props = SPEC["properties"]
    assert props["podName"]["maxLength"] == 253 and props["podName"]["pattern"].startswith("^[a-z0-9]")
    assert (
        props["timeoutSeconds"]["minimum"],
        props["timeoutSeconds"]["maximum"],
        props["timeoutSeconds"]["default"],
    ) == (10, 3600, 300)
    assert props["compression"]["enum"] == ["none", "zstd"] and props["compression"]["default"] == "zstd"
    assert props["keepSource"] == {**props["keepSource"], "type": "boolean", "default": False}
    assert props["targetNode"]["type"] == "string"
    assert SPEC["x-kubernetes-validations"][0]["rule"] == "self == oldSelf"
    assert "cancel" not in props


def test_pod_name_pattern_is_dns_subdomain():
    import re

    pattern = re.compile(SPEC["properties"]["podName"]["pattern"])
    assert pattern.match("counter-1.web")
    for bad in ("Counter", "-x", "x-", "a_b", "a..b"):
        assert not pattern.match(bad), bad


def test_status_fields():
    assert STATUS["phase"]["enum"] == list(phases.ALL)
    for field in (
        "sourceNode",
        "targetNode",
        "targetPod",
        "message",
        "reason",
        "conditions",
        "observedGeneration",
        "phaseTransitions",
        "durations",
        "checkpointBytes",
        "transferredBytes",
        "containers",
    ):
        assert field in STATUS, field
    assert set(STATUS["durations"]["properties"]) == {"checkpoint", "transfer", "restore", "downtime", "total"}
    assert all(p["type"] == "number" for p in STATUS["durations"]["properties"].values())
    condition = STATUS["conditions"]["items"]["properties"]
    assert {"type", "status", "reason", "message", "lastTransitionTime", "observedGeneration"} <= set(condition)
    criu = STATUS["containers"]["items"]["properties"]["criu"]["properties"]
    assert {"frozenTime", "pagesWritten"} <= set(criu)


def test_printer_columns():
    columns = {c["name"].upper(): c["jsonPath"] for c in VERSION["additionalPrinterColumns"]}
    assert columns == {
        "POD": ".spec.podName",
        "SOURCE": ".status.sourceNode",
        "TARGET": ".status.targetNode",
        "PHASE": ".status.phase",
        "DOWNTIME": ".status.durations.downtime",
        "AGE": ".metadata.creationTimestamp",
    }


def test_unknown_fields_are_preserved_only_for_criu_stats():
    text = (Path(__file__).parents[3] / "crds" / "podmigration.yaml").read_text()
    assert text.count("x-kubernetes-preserve-unknown-fields") == 1


# OpenAPI v3 schema keywords the CRD uses; anything else is a typo or a description that YAML split in two.
SCHEMA_KEYWORDS = {
    "type",
    "description",
    "properties",
    "items",
    "enum",
    "default",
    "format",
    "minimum",
    "maximum",
    "pattern",
    "maxLength",
    "minLength",
    "required",
    "additionalProperties",
    "nullable",
    "maxItems",
    "x-kubernetes-validations",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
}


def test_every_schema_node_uses_only_schema_keywords():
    def walk(node: dict, path: str) -> list[str]:
        bad = [f"{path}: {key}" for key in node if key not in SCHEMA_KEYWORDS]
        for name, child in node.get("properties", {}).items():
            bad += walk(child, f"{path}.{name}")
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                bad += walk(node[key], f"{path}.{key}")
        return bad

    assert walk(SCHEMA, "") == []


def _unknown_fields(value, schema, path="status"):
    """Paths of ``value`` the schema would prune (the API server drops fields a structural schema lacks)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(value, dict):
        props, extra = schema.get("properties"), schema.get("additionalProperties")
        found = []
        for key, item in value.items():
            sub = (props or {}).get(key) or extra
            found += [f"{path}.{key}"] if sub is None else _unknown_fields(item, sub, f"{path}.{key}")
        return found
    if isinstance(value, list):
        return [p for item in value for p in _unknown_fields(item, schema.get("items") or {}, f"{path}[]")]
    return []


def test_every_status_field_the_operator_writes_is_in_the_schema(world):
    """A field missing from the schema would be pruned by the API server without an error."""
    from pmfakes import start

    kube, helpers, _, _, _ = world
    pod = kube.pods[("default", "counter")]
    pod["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    pod["spec"]["containers"][0]["livenessProbe"] = {
        "exec": {"command": ["true"]},
        "periodSeconds": 1,
        "failureThreshold": 1,
    }
    helpers.open_files = {"app": [{"path": "/data/log", "size": 10}]}
    migration, _ = start(world, targetNode="worker-2")
    status = migration["status"]
    assert status["phase"] == "Succeeded" and status["volumes"] and status["warnings"]
    status["owner"], status["handover"] = (
        {"kind": "StatefulSet", "apiVersion": "apps/v1", "name": "web", "uid": "u", "generation": 2},
        {"pod": "web-0"},
    )
    assert _unknown_fields(status, SCHEMA["properties"]["status"]) == []
