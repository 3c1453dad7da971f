"""The pods around the targets, for the placement checks of ``kubectl migrate --dry-run`` and the drain's plan,
under the user's own rights.

The operator reads every pod of the cluster (and, for a namespaceSelector, the namespaces); a tenant may list pods
in its own namespace only. Rather than fail, the checks then run on that namespace's pods and the rules about pods
elsewhere are left to the operator, which checks them in Preparing; ``caveat`` says so in one line.
"""

from __future__ import annotations

from kubernetes.client.exceptions import ApiException

from ..clients.kube import Kube, status_code
from ..domain.placement import Around
from ..domain.preflight import read_around


class PodsAround:
    """Reads the pods once, on the first check that needs them (never, when the pod is not found), for every check
    after it: all of them, or on a 403 each checked pod's namespace (check_in_cluster's ``around``)."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.everywhere: Around | None = None
        self.forbidden = False
        self.by_namespace: dict[str, Around] = {}

    def __call__(self, namespace: str) -> Around:
        if self.everywhere is None and not self.forbidden:
            try:
                self.everywhere = read_around(self.kube)
            except ApiException as exc:
                if status_code(exc) != 403:
                    raise
                self.forbidden = True
        if self.everywhere is not None:
            return self.everywhere
        if namespace not in self.by_namespace:
            self.by_namespace[namespace] = read_around(self.kube, namespace)
        return self.by_namespace[namespace]

    def caveat(self) -> str | None:
        """The one line to print when only some namespaces' pods could be read."""
        if not self.forbidden:
            return None
        return (
            "note: your rights do not let you list every pod (or namespace) of the cluster, only the pods in "
            f"{', '.join(sorted(self.by_namespace))}: rules about pods in other namespaces were not checked; the "
            "operator checks them in Preparing"
        )
