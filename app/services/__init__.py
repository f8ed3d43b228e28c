"""Business rules: the log, token exchange, uploads. No HTTP here."""
