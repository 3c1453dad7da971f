"""The HTTPS API: the route table, the server and request handler, authorization, bodies, connection limits.
May import services and everything below them (node-helper/.importlinter)."""
