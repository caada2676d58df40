"""Outgoing webhooks: Standard Webhooks signatures (`signing`) and retried, signed delivery
through the guarded outbound client (`delivery`)."""
