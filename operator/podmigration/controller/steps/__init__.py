"""The steps of a migration: one module per phase (prepare.py holds Pending and Preparing), each step a function
``step(run, migration) -> migration`` over the run context (context.Run); rollback.py undoes them, helperwait.py
waits out a node-helper restart, and sourcepod.py, cleanup.py and watching.py are the actions several steps share.

Each step reads the PodMigration's status, acts, then records what it observed; any of them may run again after
an operator restart, so each is idempotent. runner.py holds the loop and the one dispatch over the phase (STEPS).
Import order inside: the step modules import the shared actions (and rollback imports restore for the hand-over),
never the other way round.
"""
