"""kopf's registry: importing this module registers every handler of the operator.

The one wiring point of controller, webhooks and identity (none of them imports another's handlers), so
``kopf run -m podmigration.handlers --all-namespaces`` and ``python -m podmigration`` run the same operator.
"""

from .controller import handlers as controller
from .identity import signer
from .webhooks import admission, preflight, server

__all__ = ["admission", "controller", "preflight", "server", "signer"]
