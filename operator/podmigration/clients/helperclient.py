"""Client of the node-helper HTTPS API (mutual TLS), and discovery of the helper on each node."""

from __future__ import annotations

import ssl
import time
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3 import HTTPSConnectionPool
from urllib3.util import parse_url

from pmcontract import paths

from ..api import common_name, helper_cn
from ..api.types import Obj
from ..domain.helpers import Helper, HelperError
from .config import Config

CONNECT_TIMEOUT = 5.0
#: Read timeout of the quick calls (freeze, thaw, restored, cleanup, health).
SHORT_TIMEOUT = 30.0
#: A helper answering 503 (every worker busy) is asked again this often, waiting as it says (at most MAX_BUSY_WAIT).
BUSY_ATTEMPTS = 6
MAX_BUSY_WAIT = 10.0


def _retry_after(response: requests.Response) -> float:
    try:
        return max(0.1, float(response.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0


class _NodeCheckedPool(HTTPSConnectionPool):
    """Checks, on every request, that the helper answering at this address holds the certificate of the node the
    operator means to call (CN system:podmigration:node-helper:<node>), not merely one its CA signed: another
    node's helper answering on that address (a moved IP, a compromised node) must not get that node's calls."""

    #: Node address -> the CN its helper's certificate must carry (HelperClient fills it before each call; the
    #: adapter sets it on a subclass per client).
    expected: dict[str, str]

    def _validate_conn(self, conn: Any) -> None:
        super()._validate_conn(conn)
        want = self.expected.get(self.host.strip("[]"))
        got = common_name(conn.sock.getpeercert()) if conn.sock is not None else None
        if want is not None and got != want:
            conn.close()
            raise ssl.SSLError(f"the helper at {self.host} presented a certificate for {got!r}, not {want!r}")


class _HelperTLSAdapter(HTTPAdapter):
    """Trust comes from the dedicated CA (chain always verified) and the node's name in the certificate's CN, not
    from host names: a helper's certificate names its node, not the node's IPs."""

    def __init__(self, expected: dict[str, str]) -> None:
        self._pool = type("NodeCheckedPool", (_NodeCheckedPool,), {"expected": expected})
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["assert_hostname"] = False
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {**self.poolmanager.pool_classes_by_scheme, "https": self._pool}


class HelperClient:
    """One method per endpoint of the node-helper API (node-helper/README.md); every error becomes a HelperError."""

    def __init__(self, config: Config) -> None:
        self._tls = config.tls_dir
        self._expected: dict[str, str] = {}
        self._session = requests.Session()
        self._session.mount("https://", _HelperTLSAdapter(self._expected))
        self._sleep = time.sleep

    def _call(
        self,
        helper: Helper,
        method: str,
        path: str,
        *,
        body: Obj | None = None,
        params: dict[str, str] | None = None,
        timeout: float = SHORT_TIMEOUT,
    ) -> Obj:
        endpoint = f"{method} {path}"
        # Resolved per request: a renewal moves the link to a new directory, never rewrites one in place.
        tls = self._tls.resolve()
        self._expected[(parse_url(helper.url).host or "").strip("[]")] = helper_cn(helper.node)
        for attempt in range(BUSY_ATTEMPTS):
            try:
                # verify with every request: a session-level verify loses to $REQUESTS_CA_BUNDLE.
                response = self._session.request(
                    method,
                    helper.url + path,
                    json=body,
                    params=params,
                    timeout=(CONNECT_TIMEOUT, timeout),
                    verify=str(tls / "ca.crt"),
                    cert=(str(tls / "tls.crt"), str(tls / "tls.key")),
                )
            except requests.RequestException as exc:
                raise HelperError(helper.node, endpoint, f"request failed: {exc}", unreachable=True) from exc
            if response.status_code != 503 or attempt == BUSY_ATTEMPTS - 1:
                break
            # All its workers are busy (the helper bounds them): it said when to come back.
            self._sleep(min(_retry_after(response), MAX_BUSY_WAIT))
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code >= 400:
            detail = payload.get("error") if isinstance(payload, dict) else None
            raise HelperError(
                helper.node,
                endpoint,
                f"HTTP {response.status_code}: {detail or response.text[:300] or response.reason}",
                response.status_code,
            )
        if not isinstance(payload, dict):
            raise HelperError(helper.node, endpoint, "answer is not a JSON object")
        return payload

    def grant_archive(
        self, receiver: Helper, archive_id: str, sender: Helper, *, recorded: dict[str, str], size: int, seconds: float
    ) -> Obj:
        """Lets ``sender``'s helper upload this archive (exactly as recorded: api.recorded_archive, and this size)
        to ``receiver`` for a while."""
        body = {
            "id": archive_id,
            "peer": sender.node,
            **recorded,
            "bytes": size,
            "expiresSeconds": max(60, min(int(seconds), 24 * 3600)),
        }
        return self._call(receiver, "POST", paths.GRANTS, body=body)

    def ensure_images(self, target: Helper, images: list[str], source: Helper, timeout: float) -> Obj:
        """The target copies the images it lacks from the source, which the operator lets it read each of."""
        for image in images:
            self._call(
                source,
                "POST",
                paths.GRANTS,
                body={"image": image, "peer": target.node, "expiresSeconds": max(60, min(int(timeout), 24 * 3600))},
            )
        return self._call(
            target,
            "POST",
            paths.IMAGES_ENSURE,
            body={"images": images, "source": source.url, "sourceNode": source.node},
            timeout=timeout,
        )

    def checkpoint(
        self,
        source: Helper,
        namespace: str,
        pod: str,
        container: str,
        archive_id: str,
        timeout: float,
        since: float | None = None,
    ) -> Obj:
        """``since`` (Unix time): the container's kubelet archives written since then are left by an interrupted
        call of this migration (its helper restarted mid-checkpoint), and deleted."""
        body: Obj = {
            "namespace": namespace,
            "pod": pod,
            "container": container,
            "id": archive_id,
            "timeoutSeconds": max(1, int(timeout)),
        }
        if since is not None:
            body["discardSince"] = since
        return self._call(source, "POST", paths.CHECKPOINT, body=body, timeout=timeout + SHORT_TIMEOUT)

    def freeze(self, helper: Helper, pod_uid: str) -> Obj:
        return self._call(helper, "POST", paths.FREEZE, body={"podUID": pod_uid})

    def thaw(self, helper: Helper, pod_uid: str) -> Obj:
        return self._call(helper, "POST", paths.THAW, body={"podUID": pod_uid})

    def send(self, source: Helper, archive_id: str, target: Helper, compression: str, timeout: float) -> Obj:
        body = {"id": archive_id, "target": target.url, "targetNode": target.node, "compression": compression}
        return self._call(source, "POST", paths.SEND, body=body, timeout=timeout)

    def progress(self, helper: Helper, archive_id: str) -> Obj:
        """Bytes done of the stream of that archive running on the helper now (404 when none runs)."""
        return self._call(helper, "GET", paths.path(paths.PROGRESS, id=archive_id), timeout=CONNECT_TIMEOUT)

    def build_checkpoint_image(
        self,
        target: Helper,
        archive_id: str,
        container: str,
        image: str,
        *,
        recorded: dict[str, str],
        size: int,
        timeout: float,
    ) -> Obj:
        """``recorded``/``size``: the archive as the checkpoint recorded it; the helper checks the file against them."""
        body = {"id": archive_id, "container": container, "image": image, **recorded, "bytes": size}
        return self._call(target, "POST", paths.IMAGES_CHECKPOINT, body=body, timeout=timeout)

    def network_cut(self, helper: Helper, pod_uid: str) -> Obj:
        return self._call(helper, "POST", paths.NETWORK_CUT, body={"podUID": pod_uid})

    def network_restore(self, helper: Helper, pod_uid: str) -> Obj:
        return self._call(helper, "POST", paths.NETWORK_RESTORE, body={"podUID": pod_uid})

    def kill(self, helper: Helper, pod_uid: str, *, thaw: bool) -> Obj:
        """SIGKILL every process of the pod while it is frozen; ``thaw=False`` leaves it frozen, dying on thaw."""
        return self._call(helper, "POST", paths.KILL, body={"podUID": pod_uid, "thaw": thaw})

    def pod_memory(self, helper: Helper, pod_uid: str) -> int:
        return int(self._call(helper, "GET", paths.path(paths.POD_MEMORY, uid=pod_uid)).get("bytes") or 0)

    def pack_volume(self, source: Helper, pod_uid: str, volume: str, archive_id: str, timeout: float) -> Obj:
        body = {"podUID": pod_uid, "volume": volume, "id": archive_id}
        return self._call(source, "POST", paths.VOLUMES_PACK, body=body, timeout=timeout)

    def unpack_volume(
        self,
        target: Helper,
        pod_uid: str,
        volume: str,
        archive_id: str,
        truncate: dict[str, int],
        *,
        recorded: dict[str, str],
        size: int,
        timeout: float,
    ) -> Obj:
        body = {
            "podUID": pod_uid,
            "volume": volume,
            "id": archive_id,
            "truncate": truncate,
            **recorded,
            "bytes": size,
            "timeoutSeconds": max(1, int(timeout)),
        }
        return self._call(target, "POST", paths.VOLUMES_UNPACK, body=body, timeout=timeout + SHORT_TIMEOUT)

    def release_volumes(self, target: Helper, pod_uid: str, gate_volume: str, timeout: float) -> Obj:
        return self._call(
            target,
            "POST",
            paths.VOLUMES_RELEASE,
            body={"podUID": pod_uid, "volume": gate_volume},
            timeout=timeout + SHORT_TIMEOUT,
        )

    def restored(self, target: Helper, namespace: str, pod: str) -> dict[str, bool]:
        answer = self._call(
            target, "GET", paths.RESTORED, params={paths.NAMESPACE_QUERY: namespace, paths.POD_QUERY: pod}
        )
        return {name: bool(value) for name, value in (answer.get("containers") or {}).items()}

    def held_migrations(self, helper: Helper) -> list[str]:
        """The uids of the migrations that have anything (archive, partial upload, checkpoint image) on the node."""
        return [str(uid) for uid in self._call(helper, "GET", paths.MIGRATIONS).get("migrations") or []]

    def remove_criu_options(self, helper: Helper) -> Obj:
        """At uninstall: the node's /etc/criu/runc.conf without the helper's managed block."""
        return self._call(helper, "DELETE", paths.CRIU_OPTIONS)

    def settle(self, target: Helper, namespace: str, pod: str, migration_uid: str, images: dict[str, str]) -> Obj:
        """Which containers CRI-O has restored and whose checkpoint image is gone, its name now their original
        image's (``images``: container -> original image), so that a restart is fresh; the others wait."""
        body = {"namespace": namespace, "pod": pod, "migration": migration_uid, "images": images}
        return self._call(target, "POST", paths.SETTLE, body=body)

    def cleanup(self, helper: Helper, migration_uid: str, aliases: bool = False) -> Obj:
        """``aliases``: the names a settled restore gave its pod's own images go too (that pod is gone there)."""
        return self._call(
            helper,
            "DELETE",
            paths.path(paths.MIGRATION, uid=migration_uid),
            params={paths.ALIASES_QUERY: "true"} if aliases else None,
        )
