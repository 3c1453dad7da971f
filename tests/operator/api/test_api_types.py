"""The typed PodMigration API (podmigration.api.types) and the CRD schema name the same fields, both ways, at every
level: a field the code types but the schema lacks would be pruned by the API server, and a field of the schema the
types lack is one the code handles untyped."""

import types
import typing
from pathlib import Path

import pytest
import yaml

from podmigration.api import types as api_types

CRD = yaml.safe_load((Path(__file__).parents[3] / "crds" / "podmigration.yaml").read_text())
SCHEMA = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]

SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _without_none(hint: object) -> object:
    """``X | None`` is X: a status patch writes None to delete a record, which the schema allows by leaving it out."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        rest = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        assert len(rest) == 1, hint
        return rest[0]
    return hint


def _mismatches(hint: object, schema: dict, where: str) -> list[str]:
    """Where the type ``hint`` and the schema differ in fields or in kind, as readable paths."""
    hint = _without_none(hint)
    if typing.is_typeddict(hint):
        if schema.get("type") != "object":
            return [f"{where}: a record in the code, {schema.get('type')} in the schema"]
        fields = typing.get_type_hints(hint)
        props = schema.get("properties") or {}
        found = [f"{where}.{k}: typed, not in the schema" for k in sorted(set(fields) - set(props))]
        found += [f"{where}.{k}: in the schema, not typed" for k in sorted(set(props) - set(fields))]
        for key in sorted(set(fields) & set(props)):
            found += _mismatches(fields[key], props[key], f"{where}.{key}")
        return found
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is list:
        if schema.get("type") != "array":
            return [f"{where}: a list in the code, {schema.get('type')} in the schema"]
        return _mismatches(args[0], schema["items"], f"{where}[]")
    if origin is dict:
        if schema.get("type") != "object" or not isinstance(schema.get("additionalProperties"), dict):
            return [f"{where}: a map in the code, not in the schema"]
        return _mismatches(args[1], schema["additionalProperties"], f"{where}{{}}")
    if schema.get("type") != SCALARS.get(hint):  # type: ignore[call-overload]
        return [f"{where}: {hint} in the code, {schema.get('type')} in the schema"]
    return []


@pytest.mark.parametrize(
    ("typed", "section"), [(api_types.PodMigrationSpec, "spec"), (api_types.PodMigrationStatus, "status")]
)
def test_the_typed_api_and_the_crd_schema_name_the_same_fields(typed, section):
    assert _mismatches(typed, SCHEMA[section], section) == []


def test_the_required_spec_fields_are_the_schemas():
    assert sorted(api_types.PodMigrationSpec.__required_keys__) == sorted(SCHEMA["spec"]["required"])


def test_the_accessors_read_a_migration_before_and_after_its_first_status():
    fresh = {"metadata": {"name": "m"}, "spec": {"podName": "p"}}
    assert (api_types.status_of(fresh), api_types.phase_of(fresh), api_types.annotations_of(fresh)) == ({}, None, {})
    assert api_types.handover_pod(fresh) is None
    moving = {
        "metadata": {"name": "m", "annotations": {"a": "b"}},
        "status": {"phase": "Restoring", "handover": {"pod": "web-0"}},
    }
    assert (api_types.phase_of(moving), api_types.annotations_of(moving)) == ("Restoring", {"a": "b"})
    assert api_types.handover_pod(moving) == "web-0"
