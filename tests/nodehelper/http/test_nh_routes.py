"""The route table against the contract: every endpoint path of pmcontract.paths is routed, and who may call what."""

from __future__ import annotations

import pytest

from nodehelper.errors import MethodNotAllowed, NotFound
from nodehelper.http.authz import Access
from nodehelper.http.routes import TABLE, resolve
from pmcontract import names, paths

CONTRACT_PATHS = {value for name, value in vars(paths).items() if name.isupper() and value.startswith("/")}


def test_every_contract_path_is_routed_and_every_route_is_a_contract_path() -> None:
    assert {route.path for route in TABLE} == CONTRACT_PATHS
    assert len({(route.method, route.path) for route in TABLE}) == len(TABLE)


def test_only_healthz_and_the_node_report_are_public_and_only_the_transfers_are_open_to_peers() -> None:
    # GET /v1/node is read-only (kubectl migrate check, through the API server's pod proxy, without a certificate).
    public = {("GET", paths.HEALTHZ), ("GET", paths.NODE)}
    assert {(r.method, r.path) for r in TABLE if r.access is Access.PUBLIC} == public
    assert {(r.method, r.path) for r in TABLE if r.access is Access.PEER} == {
        ("PUT", paths.ARCHIVE),
        ("GET", paths.IMAGES_EXPORT),
    }


def test_parameters_are_one_unquoted_path_element() -> None:
    route, params = resolve("DELETE", paths.path(paths.MIGRATION, uid="a b"))
    assert route.path == paths.MIGRATION and params == {"uid": "a b"}
    with pytest.raises(NotFound):
        resolve("GET", "/v1/progress/a/b")
    with pytest.raises(MethodNotAllowed):
        resolve("GET", paths.CHECKPOINT)


def test_names_round_trip() -> None:
    archive = names.archive_id("3f2a9c1e-0b7d-4c1a-9e2f-1234567890ab", "App")
    assert archive == "3f2a9c1e-0b7d-4c1a-9e2f-1234567890ab-app"
    assert names.archive_id_of(names.checkpoint_image(archive)) == archive
    assert names.migration_uid(archive) == names.migration_uid(names.volume_archive_id(archive[:36], "data"))
    assert names.helper_node(names.helper_cn("worker-1")) == "worker-1" and names.helper_node(names.OPERATOR_CN) is None
