"""What the helper does at start: build the API objects from the configuration, and set the node's CRIU options."""

from __future__ import annotations

import logging
import ssl

from nodehelper.config import Config
from nodehelper.criu import criuconfig
from nodehelper.http.tlsserver import TLSThreadingServer
from nodehelper.identity import tlsconfig
from nodehelper.identity.certificate import NodeIdentity
from nodehelper.node.freezer import Freezer
from nodehelper.node.killer import Killer
from nodehelper.node.netcut import NetworkCut
from nodehelper.node.volumes import EmptyDirs
from nodehelper.runtime.archivelinks import ArchiveLinks
from nodehelper.runtime.commands import Tools
from nodehelper.runtime.containers import Containers
from nodehelper.runtime.images import Images
from nodehelper.runtime.kubelet import Kubelet
from nodehelper.services.helper import Helper
from nodehelper.services.pods import PodApi
from nodehelper.services.restore.aliases import AliasRecords
from nodehelper.store.archives import ArchiveStore
from nodehelper.streams.diskspace import DiskSpace

log = logging.getLogger("nodehelper")


def build_apis(config: Config, peer_context: ssl.SSLContext) -> tuple[Helper, PodApi]:
    """``peer_context``: the client side of this node's identity (the helper swaps it on renewal)."""
    tools = Tools(config.cri_endpoint, config.storage_root, config.storage_runroot, config.storage_driver)
    kubelet_ctx = tlsconfig.kubelet_context(config.kubelet_ca_file, config.kubelet_insecure_tls)
    space = DiskSpace(config.min_free_bytes, config.min_free_percent)
    store = ArchiveStore(config.archive_dir, config.max_archive_bytes, space)
    freezer = Freezer(config.cgroup_root)
    containers = Containers(tools)
    helper = Helper(
        node_name=config.node_name,
        store=store,
        kubelet=Kubelet(
            config.node_ip, config.kubelet_port, kubelet_ctx, config.kubelet_token_file, config.kubelet_checkpoint_dir
        ),
        freezer=freezer,
        images=Images(tools),
        containers=containers,
        peer_context=peer_context,
        scratch_dir=config.scratch_dir,
        alias_records=AliasRecords(config.alias_dir),
        links=ArchiveLinks(config.runtime_dir, config.archive_dir) if config.runtime_dir else None,
    )
    pods = PodApi(
        store=store,
        containers=containers,
        netcut=NetworkCut(tools),
        killer=Killer(freezer),
        empty_dirs=EmptyDirs(config.kubelet_pods_dir),
        cgroup_root=config.cgroup_root,
    )
    return helper, pods


def use_identity(identity: NodeIdentity, server: TLSThreadingServer, helper: Helper) -> None:
    """A renewed certificate: new connections, in and out, present it; open ones finish with the old one."""
    assert identity.server_context and identity.client_context
    server.ctx = identity.server_context
    helper.peer_context = identity.client_context


def configure_criu(config: Config) -> None:
    """Keeps the node's CRIU options for runc (our block in /etc/criu/runc.conf) as PM_CRIU_OPTIONS says."""
    changed = criuconfig.apply(config.criu_config, list(config.criu_options))
    log.info(
        "CRIU options in %s: %s (%s)",
        config.criu_config,
        " ".join(config.criu_options) or "none",
        "updated" if changed else "unchanged",
    )
