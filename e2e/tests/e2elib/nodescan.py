"""Run inside a node (python3 -c) by e2elib.leftovers: prints, as JSON, everything a migration could leave there.
Any failing tool fails it, and so the check: an unreadable node must not pass for a clean one."""

import json
import os
import re
import subprocess

#: The kubelet's checkpoints and, inside, the node-helper's work directory (archives, partial uploads, tmp).
CHECKPOINTS = "/var/lib/kubelet/checkpoints"


def crictl(command: str, *args: str) -> dict:
    """The output flag goes before any argument: crictl reads every word after the first argument as another one
    (`inspecti ID -o json` asked for images "-o" and "json", and failed the scan on every untagged image)."""
    argv = ["crictl", command, "-o", "json", *args]
    return json.loads(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)


def fail(error: OSError) -> None:
    raise error


def files() -> list[str]:
    """Every file, except the helper's record of which pod an alias is for (`aliases/<id>`, node-helper
    aliases.py) while that alias, not a leftover either (images()), is there: they go together."""
    if not os.path.isdir(CHECKPOINTS):
        return []
    named = {tag for image in crictl("images")["images"] for tag in image.get("repoTags") or []}
    return [
        os.path.join(root, n)
        for root, _, names in os.walk(CHECKPOINTS, onerror=fail)
        for n in names
        if not (os.path.basename(root) == "aliases" and f"localhost/podmigration-checkpoint/{n}:latest" in named)
    ]


def links() -> list[str]:
    """Links from an image id to an archive in CRI-O's working directory (restoreFrom: archive): its own directory
    (e2e/cluster/node-services.sh), or / on a cluster started before it had one."""
    found = []
    for cwd in ("/", "/var/lib/podmigration/runtime-cwd"):
        for name in os.listdir(cwd) if os.path.isdir(cwd) else ():
            path = os.path.join(cwd, name)
            if re.fullmatch("[0-9a-f]{64}", name) and os.path.islink(path):
                found.append(f"{path} -> {os.readlink(path)}")
    return found


def frozen() -> list[str]:
    """Pod cgroups left frozen (cgroup v1 freezer, cgroup v2); on this cluster the nodes share one tree."""
    found = []
    for root, _, names in os.walk("/sys/fs/cgroup"):
        for name, states in (("freezer.state", ("FROZEN", "FREEZING")), ("cgroup.freeze", ("1",))):
            if "pod" in root and name in names:
                with open(os.path.join(root, name)) as f:
                    if f.read().strip() in states:
                        found.append(os.path.join(root, name))
    return found


def images() -> list[str]:
    """Every image, by id: one whose name was taken off is still there, told by its labels and annotations. An image
    that also has a name outside the checkpoint repository is a restored pod's own base image, given the spec's name
    for its restarts (node-helper settle.py): not a leftover."""
    found = []
    for image in crictl("images")["images"]:
        words = image.get("repoTags") or []
        if any("podmigration-checkpoint/" in w for w in words) and any(
            "podmigration-checkpoint/" not in w for w in words
        ):
            continue
        words = words or marks(image["id"])
        if words is not None:
            found.append(f"image {image['id']} {' '.join(words)}")
    return found


def marks(image_id: str) -> list[str] | None:
    """The labels and annotations of an image without a name, from CRI-O or, when CRI-O cannot answer for it, from
    the storage itself, so that such an image fails the test whose migration left it and no other; unreadable by
    both, it fails every check. None: removed since it was listed."""
    try:
        spec = crictl("inspecti", image_id).get("info", {}).get("imageSpec", {})
        return [json.dumps((spec.get("config") or {}).get("Labels") or {}), json.dumps(spec.get("annotations") or {})]
    except subprocess.CalledProcessError as crio:
        stored = subprocess.run(["buildah", "inspect", "--type", "image", image_id], capture_output=True, text=True)
        if stored.returncode and "image not known" in stored.stderr:
            return None
        if stored.returncode:
            return [f"unreadable: crictl: {crio.stderr.strip()[-200:]!r}; buildah: {stored.stderr.strip()[-200:]!r}"]
        oci = json.loads(stored.stdout).get("OCIv1") or {}
        return [
            f"(CRI-O cannot inspect it: {crio.stderr.strip()[-200:]!r})",
            json.dumps((oci.get("config") or {}).get("Labels") or {}),
            json.dumps(json.loads(stored.stdout).get("ImageAnnotations") or {}),
        ]


def containers() -> list[list[str]]:
    """[pod uid, description] of every container and sandbox."""
    found = []
    for container in crictl("ps", "-a")["containers"]:
        labels = container.get("labels") or {}
        found.append(
            [
                labels.get("io.kubernetes.pod.uid", ""),
                f"container {container['id'][:13]} {labels.get('io.kubernetes.pod.name')}/"
                f"{labels.get('io.kubernetes.container.name')} {container.get('state')}",
            ]
        )
    for sandbox in crictl("pods")["items"]:
        found.append(
            [
                sandbox["metadata"]["uid"],
                f"sandbox {sandbox['id'][:13]} {sandbox['metadata']['name']} {sandbox.get('state')}",
            ]
        )
    return found


print(
    json.dumps({"files": files(), "links": links(), "frozen": frozen(), "images": images(), "containers": containers()})
)
