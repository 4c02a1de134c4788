"""The ledger service: inbound topics -> the event ledger, idempotent, positions stored with the rows."""
