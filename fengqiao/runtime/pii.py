"""Private data in text: mainland mobile numbers, resident ID numbers, bank cards.

Shared by intake (which masks appeals) and the notifier (which refuses to post any of it), so
both agree on what private data is.
"""

from __future__ import annotations

import re

# The country code is optional ("+86 138...", "0086138...", "86138..."): without it, a number
# written with it would be read as a longer number and posted unmasked.
_PHONE = re.compile(r"(?<!\d)((?:\+|00)?86[- ]?)?(1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?!\d)")
_ID_NUMBER = re.compile(r"(?<![\dXx])(\d{17}[\dXx])(?![\dXx])")
_CARD = re.compile(r"(?<!\d)(\d(?:[ -]?\d){15,18})(?!\d)")
# What every one of the three needs: 11 digits or more, at most one space or dash between two.
# Text without it has none of them (most text: one search instead of three substitutions).
_CANDIDATE = re.compile(r"\d(?:[ -]?\d){10}")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def valid_id_number(number: str) -> bool:
    """True for an 18-digit resident ID number whose check digit is right."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == number[17].upper()


def luhn(digits: str) -> bool:
    """True when `digits` pass the Luhn check used by bank cards."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def mask_pii(text: str) -> tuple[str, list[str]]:
    """Text with phone numbers, ID numbers and bank cards masked, and the kinds found."""
    if not _CANDIDATE.search(text):
        return text, []
    kinds: list[str] = []

    def id_number(m: re.Match[str]) -> str:
        if not valid_id_number(m.group(1)):
            return m.group(0)
        kinds.append("id_number")
        return m.group(1)[:6] + "*" * 8 + m.group(1)[-4:]

    def card(m: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", m.group(1))
        if not 16 <= len(digits) <= 19 or not luhn(digits):
            return m.group(0)
        kinds.append("bank_card")
        return digits[:4] + "*" * (len(digits) - 8) + digits[-4:]

    def phone(m: re.Match[str]) -> str:
        kinds.append("phone")
        return f"{m.group(1) or ''}{m.group(2)}****{m.group(4)}"

    text = _ID_NUMBER.sub(id_number, text)
    text = _CARD.sub(card, text)
    text = _PHONE.sub(phone, text)
    return text, list(dict.fromkeys(kinds))


def pii_kinds(text: str) -> list[str]:
    """The kinds of private data in `text` (empty when there is none)."""
    return mask_pii(text)[1]


def phone_numbers(text: str) -> list[str]:
    """The mobile numbers in `text`, as 11 digits each (to compare posts, never to show)."""
    if not _CANDIDATE.search(text):
        return []
    return list(dict.fromkeys(m.group(2) + m.group(3) + m.group(4) for m in _PHONE.finditer(text)))
