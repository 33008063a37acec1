"""Driver accounts: registration, argon2id passwords, access tokens, the current user."""
