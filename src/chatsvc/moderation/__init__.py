"""Moderation of user messages: PII detection and redaction, prompt-injection rules over normalised
text, and the workspace policy that turns findings into an action. A pure library: no I/O."""

from chatsvc.moderation.normalise import warm_up
from chatsvc.moderation.policy import (
    DEFAULT_POLICY,
    Action,
    ModerationPolicy,
    PiiAction,
    PiiActions,
    PiiCategory,
    Severity,
    max_severity,
)
from chatsvc.moderation.rules import RULES, RULES_VERSION, Rule
from chatsvc.moderation.scanner import Finding, Verdict, guard, scan

__all__ = [
    "DEFAULT_POLICY",
    "RULES",
    "RULES_VERSION",
    "Action",
    "Finding",
    "ModerationPolicy",
    "PiiAction",
    "PiiActions",
    "PiiCategory",
    "Rule",
    "Severity",
    "Verdict",
    "guard",
    "max_severity",
    "scan",
    "warm_up",
]
