"""The audit trail: one durable, chained, sealed and keyed record per call.

See docs/audit.md for the design; the modules, by concern:

record      what a record holds, and the keyed hash of the queried citizen ID
chain       how records are hashed, linked and grouped in segments
seal        signed digests of closed segments; keys: the Ed25519 keys
sealer      sealing closed segments
writer      the group-commit writer the pipeline commits to (fail closed)
store*      SQLite (embedded) and PostgreSQL (shared) stores
check       checking one segment; verify: checking a whole store
retention   archive and purge
search      search, who-accessed, export; report*: the monthly usage report
cli*        the ``lc2-gateway audit`` and ``lc2-gateway report`` commands
"""

from gateway.audit.record import subject_hash
from gateway.audit.writer import SCHEMA, AuditWriter

__all__ = ["SCHEMA", "AuditWriter", "subject_hash"]
