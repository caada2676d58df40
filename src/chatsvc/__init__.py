"""chatsvc: a self-hosted backend for chat assistants."""

__version__ = "0.1.0"
