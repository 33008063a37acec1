"""Operator accounts: named staff with a role, signed in with opaque bearer tokens."""
