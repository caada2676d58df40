"""PII detection and redaction: every kind, with valid and invalid checksums."""

from __future__ import annotations

import pytest

from chatsvc.moderation import Action, scan


def redacted(text: str) -> str | None:
    return scan(text).redacted_text


def categories(text: str) -> list[str]:
    return scan(text).pii_categories


# --- payment cards ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "card",
    [
        "4111 1111 1111 1111",  # Visa
        "4111-1111-1111-1111",
        "4111111111111111",
        "5555 5555 5555 4444",  # Mastercard
        "3782 822463 10005",  # Amex, 15 digits
        "6011 1111 1111 1117",  # Discover
    ],
)
def test_luhn_valid_card_is_redacted(card: str) -> None:
    verdict = scan(f"Please charge {card} for the order.")
    assert verdict.pii_categories == ["payment_card"]
    assert verdict.action_taken is Action.REDACTED
    assert verdict.redacted_text == "Please charge [CARD] for the order."


@pytest.mark.parametrize(
    "number",
    [
        "4111 1111 1111 1112",  # Luhn-invalid
        "1234567890123452",  # Luhn-valid, but no card network starts with 1
        "4111 1111 1111",  # too short
    ],
)
def test_luhn_invalid_or_unbranded_number_is_not_flagged(number: str) -> None:
    verdict = scan(f"My reference is {number}, thanks.")
    assert not verdict.is_flagged
    assert verdict.action_taken is Action.NONE
    assert verdict.redacted_text is None


# --- IBAN ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("IBAN DE89 3704 0044 0532 0130 00 is mine", "IBAN [IBAN] is mine"),
        ("send it to DE89370400440532013000.", "send it to [IBAN]."),
        ("GB82 WEST 1234 5698 7654 32 please", "[IBAN] please"),
        ("lower case de89370400440532013000 too", "lower case [IBAN] too"),
    ],
)
def test_valid_iban_is_redacted(text: str, expected: str) -> None:
    assert categories(text) == ["iban"]
    assert redacted(text) == expected


def test_iban_with_a_wrong_check_is_not_flagged() -> None:
    assert not scan("IBAN DE89 3704 0044 0532 0130 01 is mine").is_flagged
    assert not scan("GB83 WEST 1234 5698 7654 32").is_flagged


# --- national identity numbers ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("valid", "invalid"),
    [
        ("536-90-4399", "666-90-4399"),  # US SSN: area 666 is never issued
        ("536-90-4399", "078-05-1120"),  # US SSN: the famous wallet-card number is blacklisted
        ("54362315K", "54362315A"),  # ES DNI: mod-23 letter
        ("X2482300W", "X2482300A"),  # ES NIE
        ("390.533.447-05", "390.533.447-04"),  # BR CPF: two check digits
        ("1 84 12 76 451 089 46", "1 84 12 76 451 089 47"),  # FR NIR: mod-97 key
        ("36 574 261 809", "36 574 261 890"),  # DE IdNr: ISO 7064 mod 11,10
        ("RCCMNL83S18D969H", "RCCMNL83S18D969A"),  # IT codice fiscale: check letter
    ],
)
def test_national_ids_need_a_valid_check(valid: str, invalid: str) -> None:
    verdict = scan(f"my id is {valid} ok")
    assert verdict.pii_categories == ["national_id"]
    assert verdict.redacted_text == "my id is [NATIONAL_ID] ok"
    assert not scan(f"my id is {invalid} ok").is_flagged


def test_ssn_needs_its_separators() -> None:
    # nine bare digits are far more often an order number than an SSN (which has no check digit)
    assert not scan("order 536904399 shipped").is_flagged


def test_national_id_schemes_follow_the_policy() -> None:
    from chatsvc.moderation import ModerationPolicy

    only_spain = ModerationPolicy(national_ids=["es_dni"])
    assert scan("dni 54362315K", only_spain).pii_categories == ["national_id"]
    assert not scan("cpf 390.533.447-05", only_spain).is_flagged


# --- phone numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "phone",
    [
        "+44 20 7946 0958",
        "+1 (415) 555-2671",
        "0044 20 7946 0958",
        "(415) 555-2671",
        "415-555-2671",
        "+33 6 12 34 56 78",
        "06 12 34 56 78",  # French national format (trunk 0)
        "030 901820",  # German national format
    ],
)
def test_phone_numbers_in_several_formats(phone: str) -> None:
    text = f"Call me at {phone} tomorrow."
    assert categories(text) == ["phone"]
    assert redacted(text) == "Call me at [PHONE] tomorrow."


@pytest.mark.parametrize(
    "text",
    [
        "my order 12345678 is late",  # bare digits without any sign of a phone number
        "released on 2024-11-25 at noon",
        "+44 20 7946 095 is too short",  # not a valid number
        "version 1.2.3 and build 20241125",
    ],
)
def test_numbers_that_are_not_phones(text: str) -> None:
    assert not scan(text).is_flagged


def test_a_bare_number_counts_after_a_phone_word() -> None:
    assert categories("my phone number: 2025550143") == ["phone"]
    assert not scan("my order: 2025550143").is_flagged


def test_phone_regions_follow_the_policy() -> None:
    from chatsvc.moderation import ModerationPolicy

    us_only = ModerationPolicy(phone_regions=["US"])
    assert not scan("Ring 030 901820 please", us_only).is_flagged
    assert scan("Ring +49 30 901820 please", us_only).pii_categories == ["phone"]


# --- e-mail ----------------------------------------------------------------------------------


def test_email_addresses() -> None:
    text = "Write to jane.doe+billing@mail.example.co.uk or ops@example.org."
    assert redacted(text) == "Write to [EMAIL] or [EMAIL]."
    assert not scan("the @ sign and user@localhost are not addresses").is_flagged


# --- IP addresses ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    ["203.0.113.7", "192.168.1.20", "10.0.0.1:8080", "2001:db8::1", "fe80::1ff:fe23:4567:890a"],
)
def test_ip_addresses(address: str) -> None:
    verdict = scan(f"my server is {address} today")
    assert verdict.pii_categories == ["ip_address"]
    assert "[IP]" in (verdict.redacted_text or "")


@pytest.mark.parametrize(
    "text",
    [
        "version 1.2.3 is out",
        "upgrade to 1.2.3.4.5 first",
        "we run v1.2.3.4 in production",
        "release 10.4.2.1 notes",
        "999.1.1.1 is no address",
        "localhost is 127.0.0.1 and ::1",
        "meet at 12:30:45",
        "mac 00:1a:2b:3c:4d:5e",
    ],
)
def test_things_that_are_not_ip_addresses(text: str) -> None:
    assert not scan(text).is_flagged


# --- API keys and tokens ---------------------------------------------------------------------


JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
    "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
)


@pytest.mark.parametrize(
    ("token", "rule"),
    [
        ("sk-proj-4f9T2kLmN8qR1sV6xY0zA3bC5dE7gH9j", "pii.api_key.openai"),
        ("AKIAIOSFODNN7EXAMPLE", "pii.api_key.aws"),
        ("ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8", "pii.api_key.github"),
        ("xoxb-1234567890-abcdefghijKLMN", "pii.api_key.slack"),
        ("xoxp-1234567890-abcdefghijKLMN", "pii.api_key.slack"),
        (JWT, "pii.api_key.jwt"),
        ("sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", "pii.api_key.stripe"),
        ("AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q", "pii.api_key.google"),
    ],
)
def test_api_key_shapes(token: str, rule: str) -> None:
    verdict = scan(f"here is the key {token} thanks")
    assert verdict.pii_categories == ["api_key"]
    assert [f.rule_id for f in verdict.findings] == [rule]
    assert verdict.redacted_text == "here is the key [API_KEY] thanks"


def test_private_key_block_is_redacted_whole() -> None:
    key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7\nabc=\n-----END RSA PRIVATE KEY-----"
    assert redacted(f"key:\n{key}\nend") == "key:\n[API_KEY]\nend"


@pytest.mark.parametrize(
    "text",
    [
        "I use sk-learn and scikit-learn",
        "sk-this-is-not-a-real-key-at-all",  # generated keys mix letters and digits
        "AKIA is a prefix",
        "eyJub3QiOiJhIGp3dCJ9.eyJhIjoiYiJ9.xyzxyzxyzxyz is no JWT: its header has no alg",
    ],
)
def test_things_that_are_not_api_keys(text: str) -> None:
    assert not scan(text).is_flagged


# --- several kinds at once -------------------------------------------------------------------


def test_every_kind_in_one_message() -> None:
    text = (
        "Jane (jane@example.com, +44 20 7946 0958) paid with 4111 1111 1111 1111 from "
        "DE89 3704 0044 0532 0130 00; id 536-90-4399; ip 203.0.113.7; key AKIAIOSFODNN7EXAMPLE"
    )
    verdict = scan(text)
    assert verdict.pii_categories == [
        "email", "phone", "payment_card", "iban", "national_id", "ip_address", "api_key",
    ]  # fmt: skip
    assert verdict.redacted_text == (
        "Jane ([EMAIL], [PHONE]) paid with [CARD] from [IBAN]; id [NATIONAL_ID]; ip [IP]; "
        "key [API_KEY]"
    )
    assert verdict.severity.value == "high"  # cards, national ids and keys are high
