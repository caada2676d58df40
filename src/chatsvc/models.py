"""Every mapped table, imported in one place for alembic and the test database."""

from chatsvc.artifacts.models import AnalyticsRefresh, Attachment, Bundle, Draft, Resource
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
from chatsvc.webhooks.models import WebhookDelivery, WebhookEndpoint

__all__ = [
    "AnalyticsRefresh",
    "ApiKey",
    "Assistant",
    "AssistantTool",
    "Attachment",
    "Base",
    "Bundle",
    "Chat",
    "ChatSession",
    "ChatSettings",
    "CommonQuestion",
    "Draft",
    "FixedResponse",
    "Job",
    "Lesson",
    "McpServer",
    "Message",
    "MetadataFilter",
    "Principal",
    "Report",
    "Resource",
    "StoredSecret",
    "Tool",
    "ToolParameter",
    "WebhookDelivery",
    "WebhookEndpoint",
    "Workspace",
]
