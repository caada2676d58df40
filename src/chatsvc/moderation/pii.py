"""PII detectors over the surface view: a bounded candidate regex per kind, then a validator that
keeps only real ones (Luhn and card prefixes, IBAN mod 97, national-id check digits via
python-stdnum, phone numbers via phonenumbers, IP addresses via ipaddress, token structure)."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import phonenumbers
from stdnum import iban as std_iban
from stdnum import luhn
from stdnum.br import cpf
from stdnum.de import idnr
from stdnum.es import dni, nie
from stdnum.fr import nir
from stdnum.it import codicefiscale
from stdnum.us import ssn

from chatsvc.moderation import search
from chatsvc.moderation.policy import ModerationPolicy, PiiAction, PiiCategory

#: Phone candidates parsed with phonenumbers per message; later ones are judged by shape alone.
MAX_PHONE_PARSES = 2000
#: Numeric candidates (cards, IBANs, national ids, IPv4, phones) examined per message; a 1 MB chat
#: log has about 2,500, 1 MB of numbers, dates and amounts about 28,000.
MAX_NUMERIC_CANDIDATES = 50_000


@dataclass(frozen=True, slots=True)
class PiiMatch:
    category: PiiCategory
    start: int  # in the surface view
    end: int
    rule_id: str


#: Numeric candidates run only near digits; every candidate lies within this many characters of
#: each of its digits.
DIGIT_REACH = 64


@dataclass(slots=True)
class _Scan:
    text: str
    policy: ModerationPolicy
    limits: list[str] = field(default_factory=list)
    _digit_spans: list[tuple[int, int]] | None = None
    _candidates: int = 0

    def near_digits(self, pattern: re.Pattern[str], not_after: str = "") -> Iterator[re.Match[str]]:
        """Matches of `pattern` near digits, except those right after a character of
        `not_after`. The check is done here rather than by a lookbehind in the pattern: a pattern
        that starts with a character class is searched much faster by the regex engine."""
        if self._digit_spans is None:
            self._digit_spans = search.windows(self.text, search.DIGITS, DIGIT_REACH)
        text = self.text
        for match in search.finditer_in((pattern,), text, self._digit_spans):
            at = match.start()
            if not (at and not_after and text[at - 1] in not_after):
                self._candidates += 1
                if self._candidates > MAX_NUMERIC_CANDIDATES:
                    if "numeric_candidates" not in self.limits:
                        self.limits.append("numeric_candidates")
                    return
                yield match


Detector = Callable[[_Scan], Iterator[PiiMatch]]


# --- API keys and tokens -------------------------------------------------------------------------


def _key(
    name: str, starts: tuple[str, ...], pattern: str
) -> tuple[str, tuple[str, ...], re.Pattern[str]]:
    return name, starts, re.compile(pattern)


_KEYS = (
    _key("openai", ("sk-",),
         r"\bsk-(?:proj-|svcacct-|admin-|ant-[a-z]{3,6}\d{2}-)?[A-Za-z0-9_-]{20,200}"
         r"(?![A-Za-z0-9_-])"),
    _key("stripe", ("sk_", "rk_"), r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,247}\b"),
    _key("aws", ("AKIA", "ASIA", "ABIA", "ACCA"), r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"),
    _key("github", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
         r"\b(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,255})\b"),
    _key("slack", ("xox",), r"\bxox[abposr]-[A-Za-z0-9-]{10,250}"),
    _key("google", ("AIza",), r"\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])"),
    _key("jwt", ("eyJ",),
         r"\beyJ[A-Za-z0-9_-]{5,2000}\.eyJ[A-Za-z0-9_-]{5,8000}\.[A-Za-z0-9_-]{0,2000}"),
    _key("bearer", ("earer",), r"\b[Bb]earer[ \t]{1,3}[A-Za-z0-9._~+/-]{20,2000}=*"),
    _key("private_key", ("PRIVATE KEY",),
         r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----(?:[\s\S]{0,16384}?-----END [A-Z0-9 ]{0,40}"
         r"PRIVATE KEY-----|[A-Za-z0-9+/=\s]{0,16384})"),
)  # fmt: skip


def _mixed(token: str) -> bool:
    """Generated secrets mix letters and digits; "sk-this-is-a-long-word" does not."""
    return any(c.isdigit() for c in token) and any(c.isalpha() for c in token)


def _jwt_header(token: str) -> bool:
    head = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (binascii.Error, ValueError):
        return False
    return isinstance(header, dict) and "alg" in header


def _api_keys(scan: _Scan) -> Iterator[PiiMatch]:
    for name, triggers, pattern in _KEYS:
        for match in search.finditer((pattern,), scan.text, triggers, 17_000):
            token = match.group()
            if name in ("openai", "bearer") and not _mixed(token.split(None, 1)[-1]):
                continue
            if name == "jwt" and not _jwt_header(token):
                continue
            yield PiiMatch(PiiCategory.API_KEY, *match.span(), f"pii.api_key.{name}")


# --- e-mail --------------------------------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![\w.%+-])[\w.%+-]{1,64}@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.){1,8}[^\W\d_]{2,24}(?![\w-])"
)


def _emails(scan: _Scan) -> Iterator[PiiMatch]:
    for match in search.finditer((_EMAIL,), scan.text, ("@",), 600):
        local = match.group().split("@", 1)[0]
        if local.startswith(".") or local.endswith(".") or ".." in local:
            continue
        yield PiiMatch(PiiCategory.EMAIL, *match.span(), "pii.email")


# --- payment cards -------------------------------------------------------------------------------

_CARD = re.compile(r"\d(?:[ -]?\d){12,18}(?![\d-])")
_DIGITS = "0123456789"
_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _card_brand(digits: str) -> bool:
    """Issuer prefixes and lengths of the card networks (Visa, Mastercard, Amex, Discover, JCB,
    Diners, UnionPay, Maestro): a Luhn-valid number without one is an account or order number."""
    n = len(digits)
    p2, p4, p6 = int(digits[:2]), int(digits[:4]), int(digits[:6])
    return (
        (digits[0] == "4" and n in (13, 16, 19))
        or ((51 <= p2 <= 55 or 2221 <= p4 <= 2720) and n == 16)
        or (p2 in (34, 37) and n == 15)
        or ((p4 == 6011 or p2 == 65 or 644 <= int(digits[:3]) <= 649) and 16 <= n <= 19)
        or (3528 <= p4 <= 3589 and 16 <= n <= 19)
        or ((p2 in (36, 38, 39) or 300 <= int(digits[:3]) <= 305) and 14 <= n <= 19)
        or (p2 == 62 and 16 <= n <= 19)
        or ((p2 == 50 or 56 <= p2 <= 69 or 500000 <= p6 <= 509999) and 12 <= n <= 19)
    )


def _cards(scan: _Scan) -> Iterator[PiiMatch]:
    for match in scan.near_digits(_CARD, _DIGITS + "-"):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and _card_brand(digits) and luhn.is_valid(digits):
            yield PiiMatch(PiiCategory.PAYMENT_CARD, *match.span(), "pii.payment_card")


# --- IBAN ----------------------------------------------------------------------------------------

_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){11,30}(?![A-Za-z0-9])")


def _ibans(scan: _Scan) -> Iterator[PiiMatch]:
    for match in scan.near_digits(_IBAN):
        candidate = match.group()
        # the run may have swallowed the words after the number ("DE89 ... 00 is mine")
        while candidate:
            if std_iban.is_valid(candidate):
                yield PiiMatch(PiiCategory.IBAN, match.start(), match.start() + len(candidate),
                               "pii.iban")  # fmt: skip
                break
            cut = candidate.rfind(" ")
            candidate = candidate[:cut] if cut > 0 else ""


# --- national identity numbers -------------------------------------------------------------------

_NATIONAL: dict[str, tuple[re.Pattern[str], str, Callable[[str], bool]]] = {
    # US SSN: no check digit; only the dashed or spaced form, with the SSA's area/group rules
    "us_ssn": (re.compile(r"\d{3}([- ])\d{2}\1\d{4}(?![\d-])"), _DIGITS + "-",
               lambda s: ssn.is_valid(s.replace(" ", "-"))),
    # Spain: DNI and NIE, mod-23 check letter
    "es_dni": (re.compile(r"\d{8}[- ]?[A-Za-z](?![A-Za-z0-9])"), _ALNUM, dni.is_valid),
    "es_nie": (re.compile(r"[XYZxyz][- ]?\d{7}[- ]?[A-Za-z](?![A-Za-z0-9])"), _ALNUM,
               nie.is_valid),
    # Brazil CPF: two check digits; only the punctuated form (bare 11 digits are phone numbers)
    "br_cpf": (re.compile(r"\d{3}\.\d{3}\.\d{3}-\d{2}(?![\d-]|\.\d)"), _DIGITS + ".-",
               cpf.is_valid),
    # France NIR: sex digit, year, month, department (2A/2B for Corsica), mod-97 key
    "fr_nir": (re.compile(r"[1-478] ?\d{2} ?(?:0[1-9]|1[0-2]|[2-9]\d) ?(?:\d{2}|2[ABab]) ?"
                          r"\d{3} ?\d{3} ?\d{2}(?![\dA-Za-z])"), _ALNUM, nir.is_valid),
    # Germany IdNr: digit-repetition rule and ISO 7064 mod 11,10
    "de_idnr": (re.compile(r"[1-9]\d ?\d{3} ?\d{3} ?\d{3}(?![\d-])"), _DIGITS + "-",
                idnr.is_valid),
    # Italy codice fiscale: letters/digits layout (with omocodia letters) and a check letter
    "it_cf": (re.compile(r"[A-Za-z]{6}[0-9LMNP-Vlmnp-v]{2}[A-Za-z]"
                         r"[0-9LMNP-Vlmnp-v]{2}[A-Za-z][0-9LMNP-Vlmnp-v]{3}[A-Za-z](?![A-Za-z0-9])"),
              _ALNUM, codicefiscale.is_valid),
}  # fmt: skip


def _national_ids(scan: _Scan) -> Iterator[PiiMatch]:
    for scheme in scan.policy.national_ids:
        pattern, not_after, valid = _NATIONAL[scheme]
        for match in scan.near_digits(pattern, not_after):
            if valid(match.group()):
                yield PiiMatch(PiiCategory.NATIONAL_ID, *match.span(), f"pii.national_id.{scheme}")


# --- IP addresses --------------------------------------------------------------------------------

_IPV4 = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?!\w|\.\d)")
_IPV6 = re.compile(
    r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:(?<=:)(?:\d{1,3}\.){3}\d{1,3})?"
    r"(?![\w:]|\.\w)"
)
_VERSION_BEFORE = re.compile(r"(?:\bv|\bversion|\bver\.?|\brelease|\bbuild)[ \t]{0,2}$", re.I)


def _personal(
    candidate: str, version: type[ipaddress.IPv4Address] | type[ipaddress.IPv6Address]
) -> bool:
    """Whether `candidate` is an address of that version that identifies someone: loopback,
    unspecified, multicast and reserved addresses identify no one."""
    try:
        address = version(candidate)
    except ValueError:
        return False
    return not (
        address.is_loopback or address.is_unspecified or address.is_multicast
        or address.is_reserved or (address.version == 4 and address.is_link_local)
    )  # fmt: skip


def _ips(scan: _Scan) -> Iterator[PiiMatch]:
    for match in scan.near_digits(_IPV4, _ALNUM + "_."):
        if _VERSION_BEFORE.search(scan.text, max(0, match.start() - 12), match.start()):
            continue
        if _personal(match.group(), ipaddress.IPv4Address):
            yield PiiMatch(PiiCategory.IP_ADDRESS, *match.span(), "pii.ip_address.v4")
    for match in search.finditer((_IPV6,), scan.text, ("::", ":"), 64):
        if _personal(match.group(), ipaddress.IPv6Address):
            yield PiiMatch(PiiCategory.IP_ADDRESS, *match.span(), "pii.ip_address.v6")


# --- phone numbers -------------------------------------------------------------------------------

_PHONE = re.compile(r"[+(]{0,2}\d[\d \t().\-/]{4,22}\d(?!\w)")
_DATE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}")
_NANP = re.compile(r"\(?\d{3}\)?[ .-]?\d{3}[ .-]\d{4}")
_PHONE_WORD = re.compile(
    r"\b(?:phone|tel|call|mobile|cell|fax|whats ?app|sms|text me|number|nummer|num[eé]ro|"
    r"tel[eé]fono|telefone|handy|portable|ring)\W{0,10}(?:\w+\W{1,3}){0,3}$",
    re.I,
)


def _phone_shaped(scan: _Scan, candidate: str, start: int) -> bool:
    """A number written without an international prefix counts only with evidence that it is a
    phone number: a trunk 0, an area code in brackets, North-American grouping or a phone word
    just before it. Bare digit runs are order numbers and ids far more often than phones."""
    if candidate[0] in "0(" or _NANP.fullmatch(candidate):
        return True
    return _PHONE_WORD.search(scan.text, max(0, start - 40), start) is not None


def _phones(scan: _Scan) -> Iterator[PiiMatch]:
    parses = 0
    for match in scan.near_digits(_PHONE, _ALNUM + "_+#/.-"):
        candidate = match.group()
        digits = sum(c.isdigit() for c in candidate)
        if not 7 <= digits <= 15 or _DATE.search(candidate) or candidate.count(".") >= 3:
            continue
        international = candidate[0] == "+" or candidate.startswith("00")
        if not international and not _phone_shaped(scan, candidate, match.start()):
            continue
        if parses >= MAX_PHONE_PARSES:
            if "phone_parses" not in scan.limits:
                scan.limits.append("phone_parses")
            yield PiiMatch(PiiCategory.PHONE, *match.span(), "pii.phone.unchecked")
            continue
        parses += 1
        if _valid_phone(candidate, international, scan.policy.phone_regions):
            yield PiiMatch(PiiCategory.PHONE, *match.span(), "pii.phone")


def _valid_phone(candidate: str, international: bool, regions: list[str]) -> bool:
    if international:
        number = "+" + candidate[2:] if candidate.startswith("00") else candidate
        tries: list[str | None] = [None]
    else:
        number, tries = candidate, list(regions)
    for region in tries:
        try:
            parsed = phonenumbers.parse(number, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            return True
    return False


_LONG_DIGITS = re.compile(r"\d{35,}")

#: In priority order: where two findings overlap, the earlier kind keeps the span.
DETECTORS: tuple[tuple[PiiCategory, Detector], ...] = (
    (PiiCategory.API_KEY, _api_keys),
    (PiiCategory.EMAIL, _emails),
    (PiiCategory.PAYMENT_CARD, _cards),
    (PiiCategory.IBAN, _ibans),
    (PiiCategory.NATIONAL_ID, _national_ids),
    (PiiCategory.IP_ADDRESS, _ips),
    (PiiCategory.PHONE, _phones),
)


def find_pii(surface: str, policy: ModerationPolicy) -> tuple[list[PiiMatch], list[str]]:
    """The PII in `surface` that the policy looks for (non-overlapping, in text order), and the
    names of the limits that were reached."""
    if _LONG_DIGITS.search(surface):
        # no PII lies inside a run of 35 digits or more (the longest IBAN has 34 characters), but
        # every position of such a run would start a candidate: hide the runs, keep the offsets
        surface = _LONG_DIGITS.sub(lambda m: "_" * len(m.group()), surface)
    scan = _Scan(surface, policy)
    starts: list[int] = []  # the taken spans, sorted and disjoint, so their ends are sorted too
    taken: list[PiiMatch] = []
    for category, detect in DETECTORS:
        if policy.pii.of(category) is PiiAction.ALLOW:
            continue
        for found in detect(scan):
            at = bisect_left(starts, found.end)
            if at and taken[at - 1].end > found.start:
                continue
            starts.insert(at, found.start)
            taken.insert(at, found)
    return taken, scan.limits
