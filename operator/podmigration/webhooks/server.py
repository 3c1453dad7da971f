"""The admission webhooks' HTTPS server: kopf's, behind the chart's Service (port 443 -> WEBHOOK_PORT).

With ``webhooks.clientAuth`` on (PM_WEBHOOK_CLIENT_CA, PM_WEBHOOK_CLIENT_NAMES) it answers the API server alone
(domain/webhookcaller.py): TLS requires a client certificate of that CA, so a caller without one never gets to
send a review; and a review from a certificate whose CN is not allowed (a kubelet's, a user's: the cluster CA
signs those too) is refused before kopf runs any handler, so it reads nothing and starts nothing. The API server
presents its admission client certificate only when its admission configuration names one (docs/security.md).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator, Collection
from pathlib import Path
from typing import Any

import kopf

from ..clients.config import Config
from ..domain import webhookcaller

log = logging.getLogger(__name__)

#: Where the admission webhooks listen (the chart's Service maps 443 to it).
WEBHOOK_PORT = 8443


class ApiServerOnly(kopf.WebhookServer):
    """kopf's server with a client certificate of ``verify_cafile`` required, and every review from one whose CN
    is not in ``allowed_names`` refused before kopf sees it.

    kopf builds the server's context with ``ssl.create_default_context(Purpose.CLIENT_AUTH)``, which trusts no
    system CA on the server side, then loads ``verify_cafile`` (kopf/_kits/webhooks.py, ``_build_ssl``): only
    that CA's certificates pass the handshake. The wrapping of the review function is kopf's documented way for a
    server to act on ``sslpeer`` ("Custom servers/tunnels", docs/admission.rst)."""

    def __init__(self, *, allowed_names: Collection[str], verify_cafile: str, **server: Any) -> None:
        super().__init__(verify_mode=ssl.CERT_REQUIRED, verify_cafile=verify_cafile, **server)
        self.allowed_names = frozenset(allowed_names)

    async def __call__(self, fn: kopf.WebhookFn) -> AsyncIterator[kopf.WebhookClientConfig]:
        async def checked(
            request: Any,
            *,
            webhook: str | None = None,
            headers: kopf.Headers | None = None,
            sslpeer: kopf.SSLPeer | None = None,
        ) -> Any:
            denial = webhookcaller.caller_denial(sslpeer, self.allowed_names)
            if denial:
                log.warning("admission review for webhook %s refused: %s", webhook, denial)
                return webhookcaller.refused_review(request, denial)
            return await fn(request, webhook=webhook, headers=headers, sslpeer=sslpeer)

        async for client_config in super().__call__(checked):
            yield client_config


def webhook_server(config: Config) -> kopf.WebhookServer:
    """The server for the chart's settings: the API server alone with a client CA configured, else any caller."""
    tls = Path(config.webhook_tls_dir)
    server: dict[str, Any] = {
        "addr": "0.0.0.0",
        "port": WEBHOOK_PORT,
        "certfile": str(tls / "tls.crt"),
        "pkeyfile": str(tls / "tls.key"),
    }
    if config.webhook_client_ca:
        log.info("admission webhooks answer only client certificates named %s", ", ".join(config.webhook_client_names))
        return ApiServerOnly(
            allowed_names=config.webhook_client_names, verify_cafile=config.webhook_client_ca, **server
        )
    log.warning(
        "admission webhooks accept any caller (chart value webhooks.clientAuth.enabled is false): a pod that reaches "
        "the webhook Service can forge an eviction review and start the migration of an opted-in pod; see "
        "docs/security.md to make them answer only the API server"
    )
    return kopf.WebhookServer(**server)


@kopf.on.startup()
def serve(settings: kopf.OperatorSettings, **_: Any) -> None:
    config = Config.from_env()
    if config.webhook_tls_dir:
        # The chart's webhook configurations name the Service in front of this port and carry its CA.
        settings.admission.server = webhook_server(config)
