"""The kopf side of the admission webhooks: each handler reads the request and calls a pure decision of
``domain`` (eviction, guard, handover, preflight)."""
