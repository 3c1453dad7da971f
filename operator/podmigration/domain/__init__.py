"""Pure decisions of a migration and of the admission webhooks: what to refuse, where to go, what to write.

No I/O here: a function takes what was read (pods, nodes, owners, the status) and returns a decision or a patch;
the few that read take a small Protocol (an owner reader, a pod lister) rather than a client. Imports only ``api``.
"""
