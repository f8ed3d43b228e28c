"""Storage: SQLModel tables and the stores that read and write them (SQLite or PostgreSQL).

The log's entries, tiles and checkpoints are the source of truth. The query
tables (publishers, exchanges and their claims, projects, release files) are
projections of log entries, written in the same transaction as the entry that
justifies it. Operational state is not logged: used jtis, failed exchanges,
upload-token hashes and revocations.
"""
