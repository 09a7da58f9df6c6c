"""Organisations, users, roles, login, API tokens and keys."""
