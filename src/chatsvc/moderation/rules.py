"""The versioned prompt-injection rules. Each reads the folded views (lower case, no diacritics,
invisible characters removed) unless it says it reads the original text.

Every pattern begins with one of a few literal words (its `starts`): the scanner finds those with
`str.find` (C speed) and runs the pattern only there, anchored. The rest of a pattern is bounded
(a word is letters or digits, a separator is neither, every repetition has a small maximum), so a
match attempt costs a constant and a message costs time linear in its length.

Change RULES_VERSION whenever a rule is added, removed or changed: stored verdicts name it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from chatsvc.moderation.policy import Severity
from chatsvc.moderation.search import Vocabulary

RULES_VERSION = "2026-11-25.1"

#: The injection categories, in the order a block message names them.
CATEGORIES = (
    "instruction_override",
    "system_prompt_extraction",
    "roleplay_jailbreak",
    "tool_coercion",
    "data_exfiltration",
    "delimiter_injection",
    "hidden_text",
)


@dataclass(frozen=True)
class Pattern:
    """A regex that only matches where one of its `starts` literals begins."""

    starts: tuple[str, ...]
    regex: re.Pattern[str]
    #: when set, the text just before a match must end with this (a line start, for example)
    after: re.Pattern[str] | None = None

    def match_at(self, text: str, at: int) -> re.Match[str] | None:
        match = self.regex.match(text, at)
        if match and self.after and not self.after.search(text, max(0, at - 16), at):
            return None
        return match

    def finditer(self, text: str, vocabulary: Vocabulary | None = None) -> Iterator[re.Match[str]]:
        for literal in self.starts:
            if vocabulary is not None and not vocabulary.may_contain(literal):
                continue
            at = text.find(literal)
            while at != -1:
                match = self.match_at(text, at)
                if match:
                    yield match
                at = text.find(literal, at + 1)


@dataclass(frozen=True)
class Rule:
    id: str
    category: str
    severity: Severity
    patterns: tuple[Pattern, ...]
    #: a match is dropped when the text just before it ends with this
    not_after: re.Pattern[str] | None = None
    #: "original": the rule reads the message as sent, in one regex pass, instead of the views
    target: Literal["views", "original"] = "views"

    def finditer(
        self, text: str, vocabulary: Vocabulary | None = None
    ) -> Iterator[tuple[int, int]]:
        """Spans of the matches in `text`; `vocabulary` lets absent start literals be skipped."""
        if self.target == "original":
            # whole-text regexes over the message as sent; only non-ASCII text can match them
            if not text.isascii():
                for pattern in self.patterns:
                    yield from (m.span() for m in pattern.regex.finditer(text))
            return
        for pattern in self.patterns:
            for match in pattern.finditer(text, vocabulary):
                if self.accepts(text, match.start()):
                    yield match.span()

    def accepts(self, text: str, start: int) -> bool:
        return not (self.not_after and self.not_after.search(text, max(0, start - 16), start))


@dataclass
class Attempts:
    """How many more pattern attempts a message may cost (shared by all its views)."""

    left: int

    @property
    def exhausted(self) -> bool:
        return self.left < 0


class RuleSet:
    """Rules indexed by their start literals, built once: a view is then searched for each literal
    that starts one of its words (or, for literals with punctuation, occurs in it) and nothing
    else, and each occurrence is tried against every pattern that starts with that literal."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        self.original = tuple(r for r in self.rules if r.target == "original")
        self._users: dict[str, list[tuple[Rule, Pattern]]] = {}
        for rule in self.rules:
            if rule.target == "views":
                for pattern in rule.patterns:
                    for literal in pattern.starts:
                        self._users.setdefault(literal, []).append((rule, pattern))
        #: word literals by their first two characters; the others are looked for as substrings
        self._by_head: dict[str, list[str]] = {}
        self._others: list[str] = []
        for literal in self._users:
            if literal.isalnum():
                self._by_head.setdefault(literal[:2], []).append(literal)
            else:
                self._others.append(literal)
        self._other_heads = {literal[0] for literal in self._others}

    def _present(self, text: str, vocabulary: Vocabulary | None) -> Iterable[str]:
        if vocabulary is None:
            return self._users
        # a one-character search (memchr) first: most punctuation literals are absent
        heads = {c for c in self._other_heads if c in text}
        found = {other for other in self._others if other[0] in heads and other in text}
        for word in vocabulary.words:
            for literal in self._by_head.get(word[:2], ()):
                if word.startswith(literal):
                    found.add(literal)
        return found

    def find_all(
        self, text: str, vocabulary: Vocabulary | None = None, attempts: Attempts | None = None
    ) -> Iterator[tuple[Rule, int, int]]:
        """Every match of the view rules in `text`, as (rule, start, end), in no set order; stops
        when `attempts` runs out."""
        for literal in self._present(text, vocabulary):
            users = self._users[literal]
            cost = len(users)
            at = text.find(literal)
            while at != -1:
                if attempts is not None:
                    attempts.left -= cost
                    if attempts.left < 0:
                        return
                for rule, pattern in users:
                    # inlined Pattern.match_at and Rule.accepts: this loop is the scanner's hot path
                    match = pattern.regex.match(text, at)
                    if (
                        match
                        and (not pattern.after or pattern.after.search(text, max(0, at - 16), at))
                        and (
                            not rule.not_after
                            or not rule.not_after.search(text, max(0, at - 16), at)
                        )
                    ):
                        yield rule, at, match.end()
                at = text.find(literal, at + 1)


def anchored(
    starts: str | tuple[str, ...], body: str, *, word: bool = True, after: str | None = None
) -> Pattern:
    """A pattern made of one of `starts` (at a word boundary when `word`) followed by `body`."""
    literals = (starts,) if isinstance(starts, str) else starts
    head = "|".join(re.escape(s) for s in sorted(literals, key=len, reverse=True))
    regex = re.compile((r"\b" if word else "") + f"(?:{head}){body}")
    return Pattern(literals, regex, re.compile(after) if after else None)


# Building blocks. A word is letters or digits only and a separator never contains them (nor a
# sentence end), so "word separator word" can be split in one way only: no backtracking blow-up.
W = r"[^\W_]{1,24}"
S = r"""[\s_"'`*~,:;()\[\]{}<>/\\|#+=-]{1,6}"""
#: a word that is not "my": users take back their own earlier instructions all the time
W_NOT_MY = r"(?!my\b)[^\W_]{1,24}"
#: the verb is not said by the user about themselves or others ("can I ignore ...", "we forget")
NOT_SUBJECT = re.compile(r"\b(?:i|we|they|he|she|not|never|don't|doesn't|didn't)[ \t]{1,3}$")
#: the rest of a word whose stem a pattern starts with ("ignor" + "e", "ing", "ed")
REST = r"[a-z]{0,5}\b"


def gap(words: int, word: str = W) -> str:
    """Up to `words` words, each followed by a separator."""
    return rf"(?:{word}{S}){{0,{words}}}?"


OVERRIDE = (
    "ignor", "disregard", "forget", "overrid", "overwrit", "bypass", "skip", "discard", "drop",
    "abandon", "neglect", "eras", "delet", "clear", "reset", "cancel", "nullif", "void",
)  # fmt: skip
PRIOR = (
    r"(?:previous|prior|preceding|above|earlier|former|foregoing|original|initial|old|existing"
    r"|current|system|developer|given|all|any|every|your|these|those)"
)
INSTRUCTIONS = (
    rf"(?:instructions?|prompts?|guidelines|guardrails|programming|directives"
    rf"|system{S}messages?|developer{S}messages?)"
)
LIMITS = (
    rf"(?:rules|restrictions|constraints|polic(?:y|ies)|limitations|filters?|guidelines"
    rf"|safeguards|safety|protocols|boundaries|principles|alignment|ethics|morals|censorship"
    rf"|content{S}polic(?:y|ies))"
)
#: verbs that ask for something to be shown; "what" covers what's / what is / what are
ASKING = (
    "reveal", "show", "print", "display", "output", "repeat", "recite", "dump", "leak", "expose",
    "share", "give", "tell", "send", "list", "copy", "paste", "spell", "translate", "summari",
    "describe", "disclose", "provide", "return", "echo", "quote", "read", "what",
)  # fmt: skip
ASKING_REST = rf"(?:[a-z]{{0,5}}\b)(?:{S}(?:out|back|is|are|was|were))?"
ADJECTIVES = (
    rf"(?:{S}(?:full|entire|exact|complete|whole|verbatim|actual|current|real|original|initial"
    rf"|first|hidden|secret|internal|raw|underlying)){{0,2}}"
)
#: "act as", "pretend", "you are", "be", "from now on you are" ... (stems, see PERSONA_REST)
PERSONA = (
    "act", "respond", "answer", "reply", "talk", "speak", "role", "pretend", "imagin", "simulat",
    "you", "be", "from",
)  # fmt: skip
PERSONA_REST = rf"(?:[a-z]{{0,6}}\b)(?:{S}(?:play|as|like|are|you|now|on|to|be|will|re)\b){{0,4}}"
SEND = (
    "send", "post", "upload", "forward", "email", "e-mail", "mail", "transmit", "exfiltrat",
    "leak", "submit", "append", "attach", "includ", "encod", "put", "embed", "write", "copy",
)  # fmt: skip
COVERT_VERBS = (
    r"(?:call|invoke|run|execute|trigger|send|post|delete|transfer|email|forward|upload|download"
    r"|install|use|write|modify|change|create)\b"
)
DESTINATION = (
    rf"(?:to|into|via|using|at|in|as)(?:{S}(?:the|a|an|this|that|my|our|following)){{0,3}}{S}"
)


RULES: tuple[Rule, ...] = (
    # --- instruction_override: replace the assistant's instructions with the user's
    Rule(
        "io.ignore_previous",
        "instruction_override",
        Severity.HIGH,
        (
            anchored(
                OVERRIDE,
                rf"{REST}{S}{gap(3, W_NOT_MY)}{PRIOR}{S}{gap(2, W_NOT_MY)}"
                rf"{INSTRUCTIONS}\b",
            ),
            anchored(
                OVERRIDE,
                rf"{REST}{S}{gap(2, W_NOT_MY)}{INSTRUCTIONS}{S}(?:above"
                rf"|before{S}this|so{S}far|you(?:'ve|{S}have|{S}were)?{S}"
                rf"(?:been{S})?(?:given|received|told))\b",
            ),
        ),
        not_after=NOT_SUBJECT,
    ),
    Rule(
        "io.forget_everything",
        "instruction_override",
        Severity.HIGH,
        (
            anchored(
                OVERRIDE,
                rf"{REST}{S}(?:everything|anything|all){S}{gap(3)}(?:above"
                rf"|before{S}this|previously|so{S}far|until{S}now"
                rf"|you(?:'ve|{S}have|{S}were)?{S}(?:been{S})?(?:told|given|taught"
                rf"|instructed|trained))\b",
            ),
        ),
        not_after=NOT_SUBJECT,
    ),
    Rule(
        "io.multilingual_ignore",
        "instruction_override",
        Severity.HIGH,
        (
            # es, de, fr, it: "ignore the previous instructions"
            anchored(
                ("ignor", "olvid", "descart", "omit"),
                rf"{REST}{S}{gap(2)}(?:las|tus|sus){S}{gap(1)}instrucciones{S}(?:anteriores"
                rf"|previas|originales|del{S}sistema)\b",
            ),
            anchored(
                ("ignor", "vergiss", "vergessen", "missacht"),
                rf"{REST}(?:{S}sie)?{S}{gap(2)}(?:alle{S})?(?:vorherigen|bisherigen|vorigen"
                rf"|obigen|fruheren|ursprunglichen|deine|ihre){S}{gap(1)}(?:anweisungen"
                rf"|instruktionen|regeln|vorgaben|befehle)\b",
            ),
            anchored(
                ("ignor", "oubli"),
                rf"{REST}{S}{gap(2)}(?:toutes{S})?(?:les|tes|vos){S}{gap(1)}(?:instructions"
                rf"|consignes|regles|directives){S}(?:precedentes|anterieures|initiales"
                rf"|ci-dessus|du{S}systeme)\b",
            ),
            anchored(
                ("ignor", "dimentic"),
                rf"{REST}{S}{gap(2)}(?:tutte{S})?(?:le{S})?(?:istruzioni|regole){S}"
                rf"(?:precedenti|iniziali|originali|di{S}sistema)\b",
            ),
        ),
    ),
    Rule(
        "io.bypass_safety",
        "instruction_override",
        Severity.HIGH,
        (
            anchored(
                (
                    "ignor",
                    "disregard",
                    "forget",
                    "bypass",
                    "overrid",
                    "disabl",
                    "turn",
                    "deactivat",
                    "circumvent",
                    "evad",
                    "break",
                    "remov",
                    "drop",
                    "abandon",
                    "switch",
                    "get",
                    "work",
                ),
                rf"{REST}(?:{S}(?:off|around))?{S}{gap(2)}(?:(?:all|any|every){S}(?:of{S})?)?"
                rf"(?:your|ur|its|the{S}(?:assistant|ai|model|system|bot)'?s?"
                rf"|(?:openai|anthropic|chatgpt|claude)'?s?){S}{gap(2)}{LIMITS}\b",
            ),
            anchored(
                ("ignor", "disregard", "forget"),
                rf"{REST}{S}(?:all|any){S}(?:(?:safety|ethical|moral|content){S})?(?:rules"
                rf"|restrictions|guidelines|filters|limitations|constraints|policies"
                rf"|safeguards)\b",
            ),
        ),
        not_after=NOT_SUBJECT,
    ),
    Rule(
        "io.new_instructions",
        "instruction_override",
        Severity.MEDIUM,
        (
            anchored(
                "your",
                rf"{S}(?:new|real|actual|true|updated|only|sole|primary){S}"
                rf"(?:instructions?|task|purpose|goal|objective|role|directives?"
                rf"|mission|rules|prompt)\b(?:{S}?:|{S}(?:is|are)\b)",
            ),
            anchored(
                "new",
                rf"{S}(?:system{S})?(?:instructions|prompt|directives?){S}(?:for{S}you"
                rf"|from{S}(?:the{S})?(?:developer|admin|system|openai|anthropic))\b",
            ),
            anchored(
                ("new", "updated", "revised"), rf"{S}system{S}(?:instructions|prompt|message)\b"
            ),
        ),
    ),
    # --- system_prompt_extraction: make the assistant disclose its instructions
    Rule(
        "spe.system_prompt",
        "system_prompt_extraction",
        Severity.HIGH,
        (
            anchored(
                ASKING,
                rf"{ASKING_REST}{S}(?:(?:me|us){S})?{gap(3)}(?:your|ur|the|this|its)"
                rf"{ADJECTIVES}{S}(?:system{S}?(?:prompt|message|instructions)"
                rf"|(?:hidden|secret|internal|pre|meta){S}?prompt"
                rf"|developer{S}(?:message|instructions|prompt))\b",
            ),
            anchored(
                ASKING,
                rf"{ASKING_REST}{S}(?:(?:me|us){S})?{gap(3)}(?:your|ur){ADJECTIVES}"
                rf"{S}(?:initial|original|first|underlying|base|starting|full|exact"
                rf"|complete|hidden|secret){S}(?:prompt|instructions)\b",
            ),
        ),
    ),
    Rule(
        "spe.repeat_above",
        "system_prompt_extraction",
        Severity.HIGH,
        (
            anchored(
                (
                    "repeat",
                    "print",
                    "output",
                    "write",
                    "copy",
                    "recite",
                    "echo",
                    "return",
                    "show",
                    "reproduce",
                    "paste",
                ),
                rf"{REST}(?:{S}(?:back|out|down|verbatim))?{S}{gap(4)}(?:words|text"
                rf"|everything|all|content|lines?|messages?|instructions|prompt){S}{gap(4)}"
                rf"(?:above|before{S}this|preceding|prior{S}to{S}this|at{S}the{S}(?:top"
                rf"|beginning|start))\b{S}?{gap(4)}(?:verbatim|word{S}for{S}word"
                rf"|starting{S}with|beginning{S}with|including{S}everything|in{S}(?:a{S})?"
                rf"(?:code{S}block|markdown)|exactly)\b",
            ),
        ),
    ),
    Rule(
        "spe.your_instructions",
        "system_prompt_extraction",
        Severity.MEDIUM,
        (
            anchored(
                ASKING,
                rf"{ASKING_REST}{S}(?:(?:me|us){S})?{gap(2)}(?:your|ur){ADJECTIVES}"
                rf"{S}(?:instructions|rules|guidelines|directives|prompt"
                rf"|configuration|programming)\b",
            ),
        ),
    ),
    # --- roleplay_jailbreak: a persona or mode that is said to have no rules
    Rule(
        "rj.dan",
        "roleplay_jailbreak",
        Severity.CRITICAL,
        (
            anchored("do", rf"{S}anything{S}now\b"),
            anchored("dan", rf"{S}(?:mode|prompt|jailbreak)\b"),
            anchored("jailbreak", rf"(?:ed|en)?{S}(?:mode|prompt|persona)\b"),
            anchored(
                ("chatgpt", "gpt", "assistant", "claude", "ai"),
                rf"{S}(?:with|in){S}(?:dan|developer|jailbreak|god){S}mode\b",
            ),
        ),
    ),
    Rule(
        "rj.dan_persona",
        "roleplay_jailbreak",
        Severity.MEDIUM,
        (
            anchored(
                ("you", "act", "pretend", "become", "roleplay"),
                rf"(?:{S}are|'re|{S}will{S}be|{S}as|{S}to{S}be)?(?:{S}now)?{S}(?:dan|betterdan"
                rf"|antigpt|anti-gpt)\b",
            ),
        ),
    ),
    Rule(
        "rj.mode_switch",
        "roleplay_jailbreak",
        Severity.HIGH,
        (
            anchored(
                (
                    "enabl",
                    "activat",
                    "enter",
                    "switch",
                    "turn",
                    "unlock",
                    "engag",
                    "initiat",
                    "go",
                    "boot",
                ),
                rf"{REST}(?:{S}(?:to|into|on|in))?(?:{S}(?:the|your))?{S}(?:jailbreak"
                rf"|jailbroken|dan|god|evil|unrestricted|unfiltered|uncensored|chaos"
                rf"|unlimited|amoral){S}mode\b",
            ),
            anchored(
                (
                    "jailbr",
                    "dan",
                    "god",
                    "evil",
                    "unrestrict",
                    "unfilter",
                    "uncensor",
                    "chaos",
                    "amoral",
                ),
                rf"{REST}{S}mode{S}(?:is{S})?(?:now{S})?(?:enabled|activated|engaged"
                rf"|unlocked|on)\b",
            ),
            anchored(
                "you",
                rf"(?:{S}are|'re|{S}will{S}be|{S}are{S}now|{S}now|{S}must{S}(?:now{S})?"
                rf"(?:be|operate|act|run|respond))?{S}(?:now{S})?(?:(?:in|into|with)"
                rf"{S})?(?:the{S})?(?:developer|dev|debug|sudo|admin|root|maintenance"
                rf"|opposite){S}mode\b",
            ),
            anchored("dev", rf"(?:eloper)?{S}mode{S}(?:output|response)s?\b"),
        ),
    ),
    Rule(
        "rj.unrestricted_persona",
        "roleplay_jailbreak",
        Severity.HIGH,
        (
            anchored(
                PERSONA,
                rf"{PERSONA_REST}{S}{gap(3)}(?:unfiltered|uncensored|unrestricted"
                rf"|unaligned|unmoderated|jailbroken|amoral|unchained|unshackled)\b",
            ),
            anchored(
                PERSONA,
                rf"{PERSONA_REST}{S}{gap(2)}(?:evil|rogue|malicious|unethical"
                rf"|immoral|dark|corrupt|criminal){S}{gap(1)}(?:ai|assistant"
                rf"|chatbot|bot|model|version{S}of{S}yourself|twin|gpt|llm"
                rf"|alter{S}ego)\b",
            ),
        ),
    ),
    Rule(
        "rj.no_restrictions",
        "roleplay_jailbreak",
        Severity.MEDIUM,
        (
            anchored(
                "you",
                rf"(?:'re|{S}are|{S}have|{S}will|{S}can|{S}now|{S}must|{S}should)?"
                rf"(?:{S}(?:now|also|completely|totally|fully|officially|hereby))?"
                rf"(?:{S}no{S}longer)?{S}(?:free{S}(?:from|of)|freed{S}from"
                rf"|not{S}bound{S}by|unbound{S}by|released{S}from|exempt{S}from|no"
                rf"|without|don't{S}have(?:{S}any)?|do{S}not{S}have(?:{S}any)?)"
                rf"(?:{S}(?:any|all|the|your|of|ethical|moral|safety|content)){{0,3}}"
                rf"{S}(?:restrictions|filters|censorship|content{S}polic(?:y|ies)"
                rf"|guidelines|morals|ethics|safeguards)\b",
            ),
            anchored(
                ("fictional", "hypothetical", "alternat", "parallel"),
                rf"{REST}{S}(?:world|scenario|universe|reality)\b{S}{gap(8)}(?:ai|you"
                rf"|assistant|chatbot|model|llm)s?{S}{gap(2)}(?:had|has|have|were|was|are|is"
                rf"|with|without){S}{gap(1)}(?:no|without|zero){S}{gap(1)}(?:restrictions"
                rf"|filters|guidelines|rules|limits|censorship|ethics|morals|safeguards)\b",
            ),
        ),
    ),
    # --- tool_coercion: make the assistant call its tools against the user or the workspace
    Rule(
        "tc.unconfirmed_call",
        "tool_coercion",
        Severity.HIGH,
        (
            anchored(
                ("call", "invok", "run", "execut", "trigger", "use", "fire", "perform", "make"),
                rf"{REST}(?:{S}(?:the|your|a|an|this|that|every|all|any|each))?{S}{gap(2)}"
                rf"(?:tools?|functions?|plugins?|actions?|apis?|commands?|webhooks?"
                rf"|endpoints?|tool{S}calls?|function{S}calls?)\b{S}{gap(6)}(?:without|no"
                rf"|don't|do{S}not|never|skip(?:ping)?){S}{gap(2)}(?:asking|ask"
                rf"|confirm(?:ation|ing)?|approval|permission|consent|telling|informing"
                rf"|notifying|checking|verif(?:y|ying|ication)|review(?:ing)?|human)\b",
            ),
        ),
    ),
    Rule(
        "tc.covert_action",
        "tool_coercion",
        Severity.HIGH,
        (
            anchored(
                ("silently", "secretly", "covertly", "stealthily", "invisibly"),
                rf"{S}{gap(2)}{COVERT_VERBS}",
            ),
            anchored("behind", rf"{S}the{S}user's{S}back{S}{gap(2)}{COVERT_VERBS}"),
            anchored(
                "without",
                rf"{S}(?:the{S})?user(?:'s)?{S}(?:knowing|knowledge|noticing"
                rf"|seeing|consent){S}{gap(2)}{COVERT_VERBS}",
            ),
            anchored(
                (
                    "call",
                    "invok",
                    "run",
                    "execut",
                    "trigger",
                    "send",
                    "post",
                    "delet",
                    "transfer",
                    "forward",
                    "upload",
                ),
                rf"{REST}{S}{gap(4)}(?:silently|secretly|covertly|stealthily|without{S}"
                rf"(?:the{S})?user(?:'s)?{S}(?:knowing|knowledge|noticing|consent))\b",
            ),
        ),
    ),
    Rule(
        "tc.forged_call",
        "tool_coercion",
        Severity.MEDIUM,
        (
            anchored(
                "<",
                r"\s{0,3}/?\s{0,3}(?:tool_call|tool_use|function_call|function_calls"
                r"|tool_result|function_results|invoke)\b",
                word=False,
            ),
            anchored(("tool_calls", "function_call"), r"""["']?\s{0,3}:\s{0,3}[\[{]"""),
        ),
    ),
    Rule(
        "tc.shell_payload",
        "tool_coercion",
        Severity.MEDIUM,
        (
            anchored(
                ("curl", "wget"), r"\b[^|\n]{1,300}\|\s{0,3}(?:sudo\s{1,3})?(?:ba|z|k|da|fi)?sh\b"
            ),
            anchored(
                "rm",
                r"\s{1,3}-(?:rf|fr|r\s{1,3}-f|f\s{1,3}-r)\s{1,3}(?:--no-preserve-root"
                r"\s{1,3})?(?:/|~|\*|\$home)(?=\s|$)",
            ),
            anchored("/dev/tcp/", "", word=False),
            anchored("nc", r"(?:at)?\s{1,3}(?:-\w{1,10}\s{1,3}){0,5}-e\s"),
            anchored(
                "powershell",
                r"(?:\.exe)?\s{1,3}(?:-\w{1,20}\s{1,3}){0,5}-(?:e|ec|enc"
                r"|encodedcommand)\s",
            ),
            anchored(":()", r"\s{0,3}\{\s{0,3}:\|:&\s{0,3}\};:", word=False),
        ),
    ),
    # --- data_exfiltration: move secrets or the conversation to a third party
    Rule(
        "de.send_secrets",
        "data_exfiltration",
        Severity.HIGH,
        (
            anchored(
                SEND,
                rf"{REST}{S}{gap(3)}(?:(?:the|this|our|all|your|entire|whole|full|any"
                rf"|every){S}){{0,2}}(?:system{S}prompt|secrets?|credentials"
                rf"|passwords?|api{S}keys?|access{S}tokens?|tokens?|private{S}keys?"
                rf"|env(?:ironment)?{S}variables|\.env|session{S}(?:cookies?|ids?"
                rf"|tokens?)|cookies)\b{S}{gap(4)}{DESTINATION}(?:https?|www|ftp|url"
                rf"|link|server|endpoint|webhook|domain|website|site|image|query"
                rf"|parameter|dns|pastebin|discord|telegram|attacker)\b",
            ),
        ),
    ),
    Rule(
        "de.send_conversation",
        "data_exfiltration",
        Severity.MEDIUM,
        (
            anchored(
                SEND,
                rf"{REST}{S}{gap(3)}(?:(?:the|this|our|all|your|entire|whole|full"
                rf"|every){S}){{0,2}}(?:conversation|chat{S}(?:history|log)"
                rf"|message{S}history|previous{S}messages|user{S}data|personal{S}data"
                rf"|context)\b{S}{gap(4)}{DESTINATION}(?:https?|www|ftp|url|endpoint"
                rf"|webhook|domain|website|query|parameter|dns|pastebin|attacker)\b",
            ),
            anchored(
                ("append", "add", "includ", "insert", "encod", "put", "embed", "attach"),
                rf"{REST}{S}{gap(6)}(?:to|in|into|inside|as)(?:{S}(?:the|a|an|this|every"
                rf"|each))?{S}(?:query{S}string|query{S}parameters?|image{S}(?:url|link"
                rf"|source|src)|markdown{S}image)\b",
            ),
        ),
    ),
    Rule(
        "de.markdown_image",
        "data_exfiltration",
        Severity.HIGH,
        (
            anchored(
                "![",
                r"[^\]\n]{0,200}\]\(\s{0,3}(?:https?:)?//[^\s)]{0,500}?(?:\{|%7b|\$\(|<)",
                word=False,
            ),
        ),
    ),
    # --- delimiter_injection: forged chat-template tokens and role markers
    Rule(
        "di.template_tokens",
        "delimiter_injection",
        Severity.HIGH,
        (
            anchored(
                "<|",
                r"(?:im_start|im_end|im_sep|system|user|assistant|endoftext|end|eot_id"
                r"|eom_id|start_header_id|end_header_id|begin_of_text|end_of_text"
                r"|fim_prefix|fim_middle|fim_suffix|tool|ipython)\|>",
                word=False,
            ),
            anchored(
                ("[inst]", "[/inst]", "<<sys>>", "<</sys>>", "<start_of_turn>", "<end_of_turn>"),
                "",
                word=False,
            ),
        ),
    ),
    Rule(
        "di.role_markup",
        "delimiter_injection",
        Severity.MEDIUM,
        (
            anchored(
                "<", r"\s{0,3}/?\s{0,3}(?:system|system_prompt|developer|admin)\s{0,3}>", word=False
            ),
            # a line that starts like a role header: "### System message:", "[developer]:"
            anchored(
                ("system", "developer", "admin", "[system", "[developer", "[admin"),
                r"(?:\]|[ \t]{1,3}(?:message|prompt|instructions?|override|update|note)\]?)"
                r"[ \t]{0,3}(?:\*\*)?[ \t]{0,3}:",
                word=False,
                after=r"(?:^|\n)[ \t]{0,8}(?:#{1,6}[ \t]{0,3}|\*\*)?$",
            ),
            anchored(
                ('"role', "'role"),
                r"""["']\s{0,3}:\s{0,3}["'](?:system|developer)["']""",
                word=False,
            ),
        ),
    ),
    Rule(
        "di.fake_boundary",
        "delimiter_injection",
        Severity.MEDIUM,
        (
            anchored(
                ("--", "==", "##", "**", "[", "<"),
                rf"[-=#*]{{0,6}}[ \t]{{0,3}}end{S}of{S}(?:the{S})?(?:system{S}prompt"
                rf"|user{S}input|instructions|prompt|context|document|user{S}message)\b",
                word=False,
            ),
            anchored(
                "end",
                rf"{S}of{S}(?:the{S})?(?:system{S}prompt|user{S}input|instructions"
                rf"|prompt|context|document|user{S}message)[ \t]{{0,3}}(?:[-=#*]{{2,8}}"
                rf"|\]|>)",
            ),
            anchored(
                "</",
                r"(?:user_input|user|instructions?|context|prompt|system_prompt"
                r"|document|data|input|query)>",
                word=False,
            ),
        ),
    ),
    # --- hidden_text: text written in Unicode tag characters, invisible to a human reader but
    # read by a model. Tag runs after a black flag are emoji subdivision flags, not hidden text.
    Rule(
        "ht.tag_characters",
        "hidden_text",
        Severity.MEDIUM,
        (
            Pattern(
                (),
                re.compile("(?<![\U0001f3f4\U000e0000-\U000e007f])[\U000e0020-\U000e007e]{3,}"),
            ),
        ),
        target="original",
    ),
)

DEFAULT_RULESET = RuleSet(RULES)
