"""Conversation exports: messages as RFC 4180 CSV, streamed in constant memory."""
