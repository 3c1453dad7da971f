"""Which volumes move, which claims block, how open files are cut back, and the replacement's volume gate."""

import pytest
from pmfakes import make_node, make_pod

from podmigration import api
from podmigration.domain import volumes
from podmigration.domain.preflight import preflight

NODES = [make_node("worker-1"), make_node("worker-2")]
HELPERS = {"worker-1": True, "worker-2": True}


def claim(name, modes, volume="pv-1"):
    return {"metadata": {"name": name}, "spec": {"accessModes": modes, "volumeName": volume}}


def volume(name="pv-1", affinity_host=None, **source):
    spec = dict(source or {"nfs": {"server": "10.0.0.9", "path": "/export"}})
    if affinity_host:
        spec["nodeAffinity"] = {
            "required": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "kubernetes.io/hostname", "operator": "In", "values": [affinity_host]}
                        ]
                    }
                ]
            }
        }
    return {"metadata": {"name": name}, "spec": spec}


def pod_with_claim(name="data"):
    return make_pod(volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": name}}])


def refusals(pod, claims, target="worker-2"):
    plan = preflight(
        {"podName": "counter", "targetNode": target}, "default", pod, NODES, HELPERS, claims=claims, around=None
    )
    return [r.message for r in plan.refusals]


def test_read_claims_follows_the_binding():
    pod = pod_with_claim()
    found = volumes.read_claims(pod, {"data": claim("data", ["ReadWriteMany"])}.get, {"pv-1": volume()}.get)
    assert found == {"data": (claim("data", ["ReadWriteMany"]), volume())}


@pytest.mark.parametrize("modes", [["ReadWriteMany"], ["ReadOnlyMany"], ["ReadWriteOnce", "ReadWriteMany"]])
def test_shared_claims_move(modes):
    assert refusals(pod_with_claim(), {"data": (claim("data", modes), volume(csi={"driver": "x"}))}) == []


def test_read_write_once_pod_is_refused():
    assert refusals(pod_with_claim(), {"data": (claim("data", ["ReadWriteOncePod"]), volume())}) == [
        "claim data of pod default/counter is ReadWriteOncePod: the replacement cannot use it while the source "
        "pod still exists"
    ]


def test_read_write_once_on_an_attached_volume_is_refused():
    found = refusals(pod_with_claim(), {"data": (claim("data", ["ReadWriteOnce"]), volume(csi={"driver": "ebs"}))})
    assert len(found) == 1 and "attached to one node at a time" in found[0]


def test_read_write_once_volume_the_target_cannot_reach_is_refused():
    local = volume(affinity_host="worker-1", local={"path": "/mnt/disk"})
    assert refusals(pod_with_claim(), {"data": (claim("data", ["ReadWriteOnce"]), local)}) == [
        "claim data of pod default/counter is bound to volume pv-1, which node worker-2 cannot reach (node affinity)"
    ]
    assert (
        refusals(pod_with_claim(), {"data": (claim("data", ["ReadWriteOnce"]), volume(affinity_host="worker-2"))}) == []
    )


def test_read_write_once_network_volume_reachable_from_the_target_moves():
    assert refusals(pod_with_claim(), {"data": (claim("data", ["ReadWriteOnce"]), volume())}) == []


def test_unbound_claim_is_refused():
    assert refusals(pod_with_claim(), {"data": (None, None)}) == [
        "claim data of pod default/counter is missing or not bound"
    ]


def test_moved_volumes_are_the_empty_dirs_with_their_medium():
    pod = make_pod(
        volumes=[
            {"name": "a", "emptyDir": {}},
            {"name": "b", "emptyDir": {"medium": "Memory"}},
            {"name": "c", "configMap": {"name": "x"}},
        ]
    )
    assert volumes.moved_volumes(pod) == [{"name": "a", "medium": "Disk"}, {"name": "b", "medium": "Memory"}]


def test_open_files_in_moved_volumes_are_cut_back_to_their_dump_size():
    pod = make_pod(
        containers=("app", "side"),
        volumes=[{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "x"}}],
    )
    pod["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "data", "mountPath": "/data"},
        {"name": "cfg", "mountPath": "/data/cfg"},
    ]
    pod["spec"]["containers"][1]["volumeMounts"] = [{"name": "data", "mountPath": "/var/spool/", "subPath": "side"}]
    open_files = {
        "app": [
            {"path": "/data/seq", "size": 120},
            {"path": "/data/cfg/settings", "size": 9},
            {"path": "/datax/other", "size": 3},
            {"path": "/usr/lib/libc.so", "size": 99},
        ],
        "side": [{"path": "/var/spool/queue/1", "size": 7}],
    }
    assert volumes.truncations(pod, open_files) == {"data": {"seq": 120, "side/queue/1": 7}}


def test_the_smallest_recorded_size_wins_for_a_file_open_twice():
    pod = make_pod(containers=("app", "side"), volumes=[{"name": "data", "emptyDir": {}}])
    for c in pod["spec"]["containers"]:
        c["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    assert volumes.truncations(
        pod, {"app": [{"path": "/data/log", "size": 50}], "side": [{"path": "/data/log", "size": 40}]}
    ) == {"data": {"log": 40}}


@pytest.mark.parametrize(
    "resources, gated", [({}, None), ({"requests": {"cpu": "100m"}}, {"cpu": "10m", "memory": "16Mi"})]
)
def test_volume_gate_waits_for_the_helper_and_keeps_the_qos_class(resources, gated):
    source = make_pod(volumes=[{"name": "data", "emptyDir": {}}])
    source["spec"]["containers"][0]["resources"] = resources
    replacement = {"spec": {"containers": [{"name": "app"}], "volumes": [{"name": "data", "emptyDir": {}}]}}
    volumes.add_volumes_gate(replacement, source, "localhost/podmigration:abc")
    (gate,) = replacement["spec"]["initContainers"]
    assert gate["image"] == "localhost/podmigration:abc" and f"{api.VOLUMES_GATE_PATH}/done" in gate["command"][-1]
    assert (gate.get("resources") or {}).get("limits") == gated
    assert [v["name"] for v in replacement["spec"]["volumes"]] == ["data", api.VOLUMES_GATE_VOLUME]


def test_volume_archive_ids_never_collide_with_container_ids():
    uid = "0f1e2d3c-aaaa"
    assert api.volume_archive_id(uid, "vol-data") != api.checkpoint_id(uid, "vol-data")
    assert api.volume_archive_id(uid, "data").startswith(f"{uid}-")  # cleanup goes by "<uid>-"


def test_a_replacement_with_moved_volumes_moves_again_with_one_gate_and_its_own_volumes_only():
    """Issue 14 part 2: the gate of the last restore is neither a volume to copy nor a second gate."""
    from podmigration.domain.podspec import replacement_pod

    source = make_pod(volumes=[{"name": "data", "emptyDir": {}}])
    specs = []
    for n in range(3):
        replacement = replacement_pod(
            source, migration_name=f"m{n}", migration_uid=f"{n}" * 8 + "-0000-4000-8000-1", target_node="worker-2"
        )
        volumes.add_volumes_gate(replacement, source, "localhost/podmigration:abc")
        assert volumes.moved_volumes(source) == [{"name": "data", "medium": "Disk"}]
        specs.append(replacement["spec"])
        source = {**replacement, "metadata": {**replacement["metadata"], "uid": f"pod-{n}"}}
    assert [v["name"] for v in specs[2]["volumes"]] == ["data", api.VOLUMES_GATE_VOLUME]
    assert [c["name"] for c in specs[2]["initContainers"]] == [api.VOLUMES_GATE_CONTAINER]
