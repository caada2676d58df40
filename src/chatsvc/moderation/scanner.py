"""scan() and guard(): one message in, one Verdict out (flags, severity, categories, the action
under the workspace policy, findings with spans into the original text, the redacted text).
Pure: no I/O, no database, no network."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from chatsvc.moderation import normalise as norm
from chatsvc.moderation import pii
from chatsvc.moderation.policy import (
    DEFAULT_POLICY,
    Action,
    ModerationPolicy,
    PiiAction,
    PiiCategory,
    Severity,
    max_severity,
)
from chatsvc.moderation.rules import (
    CATEGORIES,
    DEFAULT_RULESET,
    RULES,
    RULES_VERSION,
    Attempts,
    Rule,
    RuleSet,
)

logger = logging.getLogger("chatsvc.moderation")

#: Findings listed in a verdict; redaction still covers every PII finding past this.
MAX_FINDINGS = 1000
#: Matches of one injection rule that are listed (the first is enough to decide).
MAX_MATCHES_PER_RULE = 20
#: Pattern attempts per message, all views together. A 1 MB chat log needs about 150,000 and 1 MB
#: of nothing but rule words about 220,000; only text built to exhaust the scanner (one word that
#: starts many rules, repeated) gets past this, in about half a second.
MAX_RULE_ATTEMPTS = 500_000
#: The severity of an incomplete scan, by the budget that ran out: text that exhausts the rule
#: attempts was made to (it could hide an injection behind padding), so it blocks by default;
#: the other budgets are reached by large but ordinary pastes, and only flag.
LIMIT_SEVERITY = {"rule_attempts": Severity.HIGH}

#: How bad a piece of PII is when it reaches a model or a log.
PII_SEVERITY = {
    PiiCategory.EMAIL: Severity.LOW,
    PiiCategory.PHONE: Severity.LOW,
    PiiCategory.IP_ADDRESS: Severity.LOW,
    PiiCategory.IBAN: Severity.MEDIUM,
    PiiCategory.NATIONAL_ID: Severity.HIGH,
    PiiCategory.PAYMENT_CARD: Severity.HIGH,
    PiiCategory.API_KEY: Severity.HIGH,
}
PLACEHOLDERS = {
    PiiCategory.EMAIL: "[EMAIL]",
    PiiCategory.PHONE: "[PHONE]",
    PiiCategory.IP_ADDRESS: "[IP]",
    PiiCategory.IBAN: "[IBAN]",
    PiiCategory.NATIONAL_ID: "[NATIONAL_ID]",
    PiiCategory.PAYMENT_CARD: "[CARD]",
    PiiCategory.API_KEY: "[API_KEY]",
}
_PII_WORDS = {
    PiiCategory.EMAIL: "an e-mail address",
    PiiCategory.PHONE: "a phone number",
    PiiCategory.IP_ADDRESS: "an IP address",
    PiiCategory.IBAN: "a bank account number (IBAN)",
    PiiCategory.NATIONAL_ID: "a national identity number",
    PiiCategory.PAYMENT_CARD: "a payment card number",
    PiiCategory.API_KEY: "an API key or access token",
}
_INJECTION_WORDS = {
    "instruction_override": "replace the assistant's instructions",
    "system_prompt_extraction": "make the assistant reveal its instructions",
    "roleplay_jailbreak": "switch the assistant to a persona without rules",
    "tool_coercion": "make the assistant run tools or commands unchecked",
    "data_exfiltration": "send data to a third party",
    "delimiter_injection": "forge the assistant's message format",
    "hidden_text": "hide text from the reader",
    "scan_incomplete": "exceed what the scanner can check",
}
SCANNER_ERROR_MESSAGE = (
    "This message was not sent to the assistant: it could not be checked for safety. "
    "Please try again; if it keeps happening, contact the workspace administrator."
)


class Finding(BaseModel):
    """One thing found: where (a span of the original text) and what, never the text itself."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["pii", "injection"]
    category: str
    start: int
    end: int
    severity: Severity
    rule_id: str
    #: how the text was read when it matched: text, invisible (hidden characters inside the
    #: span), leet, rot13, base64, hex; anything but text raised the severity one step
    via: str = "text"


class Verdict(BaseModel):
    """The moderation result of one message."""

    model_config = ConfigDict(frozen=True)

    is_flagged: bool
    severity: Severity
    injection_categories: list[str]
    pii_categories: list[str]
    action_taken: Action
    findings: list[Finding]
    #: the message with PII replaced by placeholders, when the policy redacted (or blocked) some;
    #: kept out of repr so that logging a verdict never logs message text
    redacted_text: str | None = Field(default=None, repr=False)
    #: what to answer instead of the blocked message
    block_message: str | None = None
    rules_version: str = RULES_VERSION
    #: scanner budgets that ran out on this message (see docs/moderation.md)
    limits_reached: list[str] = Field(default_factory=list)

    @property
    def blocked(self) -> bool:
        return self.action_taken is Action.BLOCKED


def scan(
    text: str, policy: ModerationPolicy = DEFAULT_POLICY, *, rules: Sequence[Rule] = RULES
) -> Verdict:
    """Scan one message. Raises on a scanner bug: call guard() where a message must not pass
    unchecked."""
    n = norm.normalise(text)
    findings: list[Finding] = []
    redact: list[Finding] = []
    blocking_pii: list[PiiCategory] = []

    matches, limits = pii.find_pii(n.surface, policy)
    for match in matches:
        start, end = n.surface_map.span(match.start, match.end)
        finding = Finding(
            kind="pii",
            category=match.category.value,
            start=start,
            end=end,
            severity=PII_SEVERITY[match.category],
            rule_id=match.rule_id,
        )
        findings.append(finding)
        action = policy.pii.of(match.category)
        if action in (PiiAction.REDACT, PiiAction.BLOCK):
            redact.append(finding)
        if action is PiiAction.BLOCK and match.category not in blocking_pii:
            blocking_pii.append(match.category)

    views, decode_limits = norm.injection_views(n)
    limits += decode_limits
    ruleset = DEFAULT_RULESET if rules is RULES else RuleSet(rules)
    attempts = Attempts(MAX_RULE_ATTEMPTS)
    found = _injection_findings(ruleset, n, views, attempts)
    findings += [f for f in found if policy.injection_kept(f.severity)]
    if attempts.exhausted:
        limits.append("rule_attempts")
    if limits:
        incomplete = Finding(
            kind="injection",
            category="scan_incomplete",
            start=0,
            end=len(text),
            severity=max_severity(LIMIT_SEVERITY.get(limit, Severity.LOW) for limit in limits),
            rule_id="limit." + ",".join(limits),
        )
        if policy.injection_kept(incomplete.severity):
            findings.append(incomplete)

    injections = [f for f in findings if f.kind == "injection"]
    blocking_injection = [f.category for f in injections if policy.injection_blocks(f.severity)]
    if blocking_pii or blocking_injection:
        action_taken = Action.BLOCKED
    elif redact:
        action_taken = Action.REDACTED
    elif findings:
        action_taken = Action.FLAGGED
    else:
        action_taken = Action.NONE
    return Verdict(
        is_flagged=bool(findings),
        severity=max_severity(f.severity for f in findings),
        injection_categories=_ordered({f.category for f in injections}),
        pii_categories=[c.value for c in PiiCategory if any(f.category == c for f in findings)],
        action_taken=action_taken,
        findings=findings[:MAX_FINDINGS],
        redacted_text=_redacted(text, redact) if redact else None,
        block_message=_block_message(policy, blocking_pii, blocking_injection)
        if action_taken is Action.BLOCKED
        else None,
        limits_reached=limits,
    )


def guard(
    text: str, policy: ModerationPolicy = DEFAULT_POLICY, *, rules: Sequence[Rule] = RULES
) -> Verdict:
    """scan(), failing closed: if the scanner itself fails, the message is blocked (category
    scanner_error) and the failure is logged without any of the message's text."""
    try:
        return scan(text, policy, rules=rules)
    except Exception as exc:
        frame = exc.__traceback__
        while frame is not None and frame.tb_next is not None:
            frame = frame.tb_next
        where = f"{frame.tb_frame.f_code.co_filename}:{frame.tb_lineno}" if frame else "?"
        # the exception's message may quote the text: log its type and place only
        logger.error("moderation scanner failed (%s at %s): message blocked", type(exc).__name__,
                     where)  # fmt: skip
        return Verdict(
            is_flagged=True,
            severity=Severity.HIGH,
            injection_categories=["scanner_error"],
            pii_categories=[],
            action_taken=Action.BLOCKED,
            findings=[],
            block_message=policy.block_message or SCANNER_ERROR_MESSAGE,
        )


def _injection_findings(
    ruleset: RuleSet, n: norm.Normalised, views: list[norm.View], attempts: Attempts
) -> list[Finding]:
    found: dict[tuple[str, int, int], Finding] = {}  # one per rule and span, the first view wins
    per_rule: dict[str, int] = {}

    def add(rule: Rule, start: int, end: int, via: str) -> None:
        key = (rule.id, start, end)
        if key not in found and per_rule.get(rule.id, 0) < MAX_MATCHES_PER_RULE:
            found[key] = _finding(rule, start, end, via)
            per_rule[rule.id] = per_rule.get(rule.id, 0) + 1

    for rule in ruleset.original:
        for start, end in rule.finditer(n.original):
            add(rule, start, end, "text")
    for view in views:
        for rule, vstart, vend in ruleset.find_all(view.text, view.vocabulary, attempts):
            start, end = view.origin(vstart, vend)
            via = view.via
            # hidden characters inside the match, or wrapping it (bidi overrides)
            if via == "text" and norm.has_invisible(n.original[max(0, start - 1) : end + 1]):
                via = "invisible"
            add(rule, start, end, via)
    return sorted(found.values(), key=lambda f: (f.start, f.rule_id))


def _finding(rule: Rule, start: int, end: int, via: str) -> Finding:
    return Finding(
        kind="injection",
        category=rule.category,
        start=start,
        end=end,
        severity=rule.severity if via == "text" else rule.severity.raised(),
        rule_id=rule.id,
        via=via,
    )


def _ordered(categories: set[str]) -> list[str]:
    known = [c for c in (*CATEGORIES, "scan_incomplete") if c in categories]
    return known + sorted(categories.difference(known))


def _redacted(text: str, findings: list[Finding]) -> str:
    pieces: list[str] = []
    at = 0
    for f in sorted(findings, key=lambda f: f.start):
        if f.start < at:  # spans are disjoint; this only guards against a detector bug
            continue
        pieces += (text[at : f.start], PLACEHOLDERS[PiiCategory(f.category)])
        at = f.end
    pieces.append(text[at:])
    return "".join(pieces)


def _block_message(
    policy: ModerationPolicy, pii_categories: list[PiiCategory], injections: list[str]
) -> str:
    if policy.block_message:
        return policy.block_message
    kinds = [_PII_WORDS[c] for c in PiiCategory if c in pii_categories]
    if injections:
        reasons = [_INJECTION_WORDS.get(c, c.replace("_", " ")) for c in _ordered(set(injections))]
        also = f" It also contains {_join(kinds)}." if kinds else ""
        return (
            "This message was not sent to the assistant: it looks like an attempt to "
            + _join(reasons)
            + f".{also} Please rephrase your request."
        )
    return (
        "This message was not sent to the assistant because it contains "
        + _join(kinds)
        + ". Remove it and send the message again."
    )


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
