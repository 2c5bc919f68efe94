"""Private data: mobile numbers, resident ID numbers and bank cards are found and masked."""

from __future__ import annotations

import pytest

from fengqiao.runtime.pii import luhn, mask_pii, pii_kinds, valid_id_number

ID_BODY = "65010219900101123"  # 650102 (乌鲁木齐天山区), born 1990-01-01, sequence 123


def id_check_digit(first17: str) -> str:
    """GB 11643: weights 2^(17-i) mod 11, check = (12 - sum mod 11) mod 11, 10 written X."""
    total = sum(int(d) * (2 ** (17 - i) % 11) for i, d in enumerate(first17))
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


def luhn_digit(partial: str) -> str:
    """The digit that, appended, makes `partial` pass the Luhn check."""
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:  # these are doubled once the check digit is appended
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str((10 - total % 10) % 10)


VALID_ID = ID_BODY + id_check_digit(ID_BODY)
WRONG_ID = ID_BODY + str((int(id_check_digit(ID_BODY).replace("X", "10")) + 1) % 10)
CARD_BODY = "622202000000123456"  # 18 digits; with its check digit a 19-digit UnionPay card
VALID_CARD = CARD_BODY + luhn_digit(CARD_BODY)
WRONG_CARD = CARD_BODY + str((int(luhn_digit(CARD_BODY)) + 1) % 10)


def test_the_test_helpers_agree_with_known_numbers() -> None:
    # 11010519491231002X is the example number of GB 11643; 4111111111111111 a test card.
    assert id_check_digit("11010519491231002") == "X"
    assert luhn_digit("411111111111111") == "1"


# --------------------------------------------------------------------------- mobile numbers


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("电话13812345678", "电话138****5678"),
        ("电话 138 1234 5678 谢谢", "电话 138****5678 谢谢"),
        ("电话138-1234-5678", "电话138****5678"),
        ("19912345678", "199****5678"),
    ],
)
def test_mobile_numbers_are_masked(text: str, masked: str) -> None:
    assert mask_pii(text) == (masked, ["phone"])


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("+8613812345678", "+86138****5678"),
        ("+86 138 1234 5678", "+86 138****5678"),
        ("8613812345678", "86138****5678"),
        ("008613812345678", "0086138****5678"),
    ],
)
def test_mobile_numbers_with_the_country_code_are_masked(text: str, masked: str) -> None:
    assert mask_pii(f"打{text}") == (f"打{masked}", ["phone"])


@pytest.mark.parametrize(
    "text",
    [
        "12812345678",  # no mobile prefix starts with 12
        "138123456789",  # twelve digits: not a phone number
        "订单号213812345678",  # inside a longer number
        "1381234567",  # ten digits
    ],
)
def test_numbers_that_are_not_mobile_numbers_are_kept(text: str) -> None:
    assert mask_pii(text) == (text, [])


# --------------------------------------------------------------------------- ID numbers


def test_the_id_check_digit_is_verified() -> None:
    assert valid_id_number(VALID_ID)
    assert not valid_id_number(WRONG_ID)
    assert valid_id_number("11010519491231002X")
    assert valid_id_number("11010519491231002x")
    assert not valid_id_number(VALID_ID[:-1])
    assert not valid_id_number("X" + VALID_ID[1:])


def test_a_valid_id_number_is_masked_keeping_region_and_last_four() -> None:
    masked, kinds = mask_pii(f"身份证{VALID_ID}。")
    assert masked == f"身份证650102********{VALID_ID[-4:]}。"
    assert kinds == ["id_number"]


def test_an_id_number_ending_in_x_is_masked() -> None:
    assert mask_pii("身份证11010519491231002X") == ("身份证110105********002X", ["id_number"])


def test_an_id_number_with_a_wrong_check_digit_is_not_an_id_number() -> None:
    assert not luhn(WRONG_ID)  # nor a card number, so nothing at all
    assert mask_pii(f"编号{WRONG_ID}") == (f"编号{WRONG_ID}", [])


# --------------------------------------------------------------------------- bank cards


def test_luhn() -> None:
    assert luhn("4111111111111111")
    assert not luhn("4111111111111112")
    assert luhn(VALID_CARD)
    assert not luhn(WRONG_CARD)


@pytest.mark.parametrize(
    "written",
    [
        VALID_CARD,
        " ".join(VALID_CARD[i : i + 4] for i in range(0, len(VALID_CARD), 4)),
        "-".join(VALID_CARD[i : i + 4] for i in range(0, len(VALID_CARD), 4)),
    ],
)
def test_a_card_number_passing_luhn_is_masked(written: str) -> None:
    masked, kinds = mask_pii(f"卡号{written}，谢谢")
    assert kinds == ["bank_card"]
    assert masked == f"卡号{VALID_CARD[:4]}{'*' * 11}{VALID_CARD[-4:]}，谢谢"


def test_a_sixteen_digit_card_is_masked() -> None:
    assert mask_pii("卡4111111111111111") == ("卡4111********1111", ["bank_card"])


def test_a_card_number_failing_luhn_is_kept() -> None:
    assert mask_pii(f"卡号{WRONG_CARD}") == (f"卡号{WRONG_CARD}", [])


# --------------------------------------------------------------------------- no false positives


@pytest.mark.parametrize(
    "text",
    [
        "2026年11月27日在博乐市",
        "20261127",
        "被拖欠工资100000元",
        "欠款1,000,000元",
        "工程款 3500000 元，2025-06-30 到期",
        "案号(2025)新2701民初1234号",
        "邮编833400，门牌12号",
    ],
)
def test_ordinary_numbers_are_not_private_data(text: str) -> None:
    assert mask_pii(text) == (text, [])
    assert pii_kinds(text) == []


def test_every_kind_found_is_listed_once_in_order() -> None:
    text = f"身份证{VALID_ID} 电话13812345678 卡{VALID_CARD} 又打13912345678"
    masked, kinds = mask_pii(text)
    assert kinds == ["id_number", "bank_card", "phone"]
    for secret in (VALID_ID, VALID_CARD, "13812345678", "13912345678"):
        assert secret not in masked
    assert pii_kinds(text) == kinds
