"""Workspace secrets: a SecretStore with a local encrypted backend and Azure Key Vault."""
