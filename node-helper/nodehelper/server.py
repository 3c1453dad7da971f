"""The node-helper's entry point (`python -m nodehelper.server`, as the chart runs it): settings, the node's CRIU
options, this node's identity, the API objects (startup.py) on the HTTPS server (http/), metrics, renewal."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from nodehelper import metrics, startup
from nodehelper.config import Config
from nodehelper.http.server import HelperServer
from nodehelper.identity import CsrIssuer, NodeIdentity
from nodehelper.runtime import criocheck
from nodehelper.services.nodefacts import NodeFacts
from nodehelper.streams.diskspace import DiskSpace

log = logging.getLogger("nodehelper")


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("PM_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = Config.from_env()
        startup.configure_criu(config)
        criocheck.report(config.cri_endpoint)
        identity = NodeIdentity(
            CsrIssuer(config.node_name, config.signer_name, config.cert_validity_seconds, config.csr_timeout_seconds),
            config.identity_dir,
        )
        identity.renew()
        assert identity.server_context and identity.client_context
        helper, pods = startup.build_apis(config, identity.client_context)
        server = HelperServer(
            (config.node_ip, config.port),
            identity.server_context,
            helper,
            pods,
            max_workers=config.max_workers,
            criu_config=config.criu_config,
            limits=config.connection_limits,
            node_facts=NodeFacts(
                config.node_name,
                config.cri_endpoint,
                config.criu_config,
                config.work_dir,
                DiskSpace(config.min_free_bytes, config.min_free_percent),
                config.criu_search,
            ),
        )
    except Exception as exc:  # no identity, bad settings: say why and let the kubelet restart us
        log.error("node-helper cannot start: %s", exc)
        sys.exit(2)
    metrics.serve(config.node_ip, config.metrics_port, config.archive_dir)
    identity.on_renew(lambda new: startup.use_identity(new, server, helper))
    stop = threading.Event()
    threading.Thread(target=identity.keep_renewed, args=(stop,), name="renewal", daemon=True).start()
    if config.kubelet_insecure_tls:
        log.warning("KUBELET_INSECURE_TLS is set: the kubelet's certificate is not verified")
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    log.info("node-helper for node %s listening on https://%s:%d", config.node_name, config.node_ip, config.port)
    try:
        server.serve_forever()
    finally:
        stop.set()
        server.server_close()
        log.info("node-helper stopped")


if __name__ == "__main__":
    main()
