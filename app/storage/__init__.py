"""Storage: SQLModel tables and the stores that read and write them (SQLite or PostgreSQL).

The log's entries, tiles and checkpoints are the source of truth; every other
table is a projection of log entries, written in the same transaction as the
entry that justifies it.
"""
