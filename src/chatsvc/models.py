"""Every mapped table, imported in one place for alembic and the test database."""

from chatsvc.assistants.models import Assistant, AssistantTool
from chatsvc.auth.models import ApiKey, Principal, Workspace
from chatsvc.chats.models import Chat, ChatSettings, Message
from chatsvc.jobs.models import Job
from chatsvc.kit.db import Base
from chatsvc.knowledge.models import CommonQuestion, FixedResponse, Lesson
from chatsvc.reports.models import Report
from chatsvc.secrets.models import StoredSecret
from chatsvc.threads.models import ChatSession
from chatsvc.tools.models import McpServer, MetadataFilter, Tool, ToolParameter

__all__ = [
    "ApiKey",
    "Assistant",
    "AssistantTool",
    "Base",
    "Chat",
    "ChatSession",
    "ChatSettings",
    "CommonQuestion",
    "FixedResponse",
    "Job",
    "Lesson",
    "McpServer",
    "Message",
    "MetadataFilter",
    "Principal",
    "Report",
    "StoredSecret",
    "Tool",
    "ToolParameter",
    "Workspace",
]
