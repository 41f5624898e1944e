"""USCC (GB 32100-2015) check digit and device certificate-number parsing."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.certno import parse_certificate_no
from engine.uscc import make_uscc, uscc_check_char, validate_uscc

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100-2015, brief §6
# Weights as printed in the brief (§6), independent of the code's own computation.
BRIEF_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


def reference_check(first17: str) -> str:
    total = sum(CHARSET.index(c) * w for c, w in zip(first17, BRIEF_WEIGHTS))
    c = 31 - total % 31
    return CHARSET[0 if c == 31 else c]


# --- USCC -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        "91110108551385082Q",  # 小米科技有限责任公司 (uscc-utils README)
        "91110000600037341L",  # dataprep docs
        "91350100M000100Y43",
        "91512000MA62XY001U",  # contract sample
    ],
)
def test_published_codes_validate(code):
    assert validate_uscc(code) == code


def test_brief_negative_example_names_expected_check_digit():
    with pytest.raises(ValueError) as e:
        validate_uscc("91510100MA61R0XXXX")
    assert "校验码" in str(e.value) and "应为 7" in str(e.value)


def test_lower_case_is_accepted_and_upper_cased():
    assert validate_uscc("91110108551385082q") == "91110108551385082Q"
    assert validate_uscc("  91512000ma62xy001u ") == "91512000MA62XY001U"


@pytest.mark.parametrize("code,actual", [("9111010855138508", 16), ("91110108551385082QX", 19), ("", 0)])
def test_wrong_length_is_reported_with_actual_length(code, actual):
    with pytest.raises(ValueError) as e:
        validate_uscc(code)
    assert "18位" in str(e.value) and f"实际为{actual}位" in str(e.value)


@pytest.mark.parametrize("letter", list("IOSVZ"))
def test_excluded_letters_are_reported_with_position(letter):
    code = "9111010" + letter + "551385082Q"
    with pytest.raises(ValueError) as e:
        validate_uscc(code)
    assert f"第8位“{letter}”" in str(e.value)


def test_illegal_character_is_shown_as_typed():
    with pytest.raises(ValueError) as e:
        validate_uscc("9111010o551385082Q")
    assert "第8位“o”" in str(e.value)


def test_inner_space_is_illegal():
    with pytest.raises(ValueError) as e:
        validate_uscc("91110108 51385082Q")
    assert "第9位" in str(e.value)


def test_non_string_rejected():
    with pytest.raises(ValueError):
        validate_uscc(911101085513850820)  # type: ignore[arg-type]


body17 = st.text(alphabet=CHARSET, min_size=17, max_size=17)


@given(body17)
def test_check_char_matches_brief_weights(first17):
    assert uscc_check_char(first17) == reference_check(first17)


@given(body17)
def test_make_uscc_always_validates(first17):
    code = make_uscc(first17)
    assert len(code) == 18 and code[:17] == first17
    assert validate_uscc(code) == code
    assert validate_uscc(code.lower()) == code


@given(body17, st.integers(0, 17), st.integers(1, 30))
@settings(max_examples=500)
def test_every_single_substitution_is_detected(first17, pos, shift):
    code = make_uscc(first17)
    replacement = CHARSET[(CHARSET.index(code[pos]) + shift) % 31]
    assert replacement != code[pos]
    changed = code[:pos] + replacement + code[pos + 1 :]
    with pytest.raises(ValueError, match="校验码"):
        validate_uscc(changed)


def test_single_substitution_exhaustive_on_one_code():
    # All 18 x 30 substitutions of a real code, not just a sample.
    code = "91110108551385082Q"
    for pos in range(18):
        for c in CHARSET:
            if c == code[pos]:
                continue
            with pytest.raises(ValueError):
                validate_uscc(code[:pos] + c + code[pos + 1 :])


# --- certificate numbers ------------------------------------------------------------


@pytest.mark.parametrize(
    "number,kind,authority,approval,year,cls,catalogue,serial",
    [
        ("川械注准20242170123", "registration", "川", "准", 2024, "II", "17", "0123"),
        ("国械注准20253170045", "registration", "国", "准", 2025, "III", "17", "0045"),
        ("国械注进20243170010", "registration", "国", "进", 2024, "III", "17", "0010"),
        ("国械注进20182400001", "registration", "国", "进", 2018, "II", "40", "0001"),
        ("国械注许20222170007", "registration", "国", "许", 2022, "II", "17", "0007"),
        ("国械注许20213170002", "registration", "国", "许", 2021, "III", "17", "0002"),
        ("粤械注准20192170500", "registration", "粤", "准", 2019, "II", "17", "0500"),
        ("川资械备20240012号", "filing", "川资", None, 2024, "I", None, "0012"),
        ("浙温械备20140027号", "filing", "浙温", None, 2014, "I", None, "0027"),
        ("国械备20150003号", "filing", "国", None, 2015, "I", None, "0003"),
    ],
)
def test_parts_of_example_numbers(number, kind, authority, approval, year, cls, catalogue, serial):
    p = parse_certificate_no(number)
    assert p is not None
    assert (p.kind, p.authority, p.approval, p.year, p.device_class, p.catalogue_code, p.serial) == (
        kind,
        authority,
        approval,
        year,
        cls,
        catalogue,
        serial,
    )


def test_dental_catalogue():
    assert parse_certificate_no("川械注准20242170123").dental is True
    assert parse_certificate_no("国械注进20182400001").dental is False
    assert parse_certificate_no("川资械备20240012号").dental is None


def test_surrounding_whitespace_ignored():
    assert parse_certificate_no(" 川械注准20242170123 ").serial == "0123"


def test_a_trailing_hao_copied_from_a_document_is_read():
    """"川械注准20252170031号" (as copied from a document) was unreadable, so the self-check asked
    the clerk for the number they had just typed."""
    assert parse_certificate_no("川械注准20252170031号") == parse_certificate_no("川械注准20252170031")
    assert parse_certificate_no("川械注准20252170031号").device_class == "II"


@pytest.mark.parametrize(
    "number",
    [
        "川械注准20243170123",  # a province cannot approve Class III
        "国械注准20252170045",  # domestic Class II is approved by the province
        "川械注进20242170123",  # imports are approved by 国家药监局
        "川械注许20242170123",
        "港械注准20242170123",  # not a mainland province
        "川械注准20241170123",  # class digit 1 does not exist in registrations
        "川械注准2024217012",  # one digit short
        "川械注准202421701234",  # one digit long
        "川械注准２0242170123",  # full-width digit
        "川械注准19992170123",  # pre-format year
        "川械准20242170123",
        "川资械备2024001号",
        "川资械备202400123号",
        "资械备20240012号",  # no province
        "国食药监械(准)字2004第3460001号",  # legacy format: manual review
        "",
        "20242170123",
    ],
)
def test_malformed_numbers_are_unparseable(number):
    assert parse_certificate_no(number) is None


def test_non_string_is_unparseable():
    assert parse_certificate_no(None) is None  # type: ignore[arg-type]


provinces = st.sampled_from(list("京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"))
digits = lambda n: st.text(alphabet="0123456789", min_size=n, max_size=n)  # noqa: E731


@given(provinces, st.integers(2000, 2099), digits(2), digits(4))
def test_any_provincial_class_ii_number_round_trips(prov, year, cat, serial):
    p = parse_certificate_no(f"{prov}械注准{year}2{cat}{serial}")
    assert p is not None
    assert (p.authority, p.year, p.device_class, p.catalogue_code, p.serial) == (prov, year, "II", cat, serial)
    # The same digits with class 3 from a province are inconsistent.
    assert parse_certificate_no(f"{prov}械注准{year}3{cat}{serial}") is None


@given(st.sampled_from("准进许"), st.sampled_from("23"), st.integers(2000, 2099), digits(2), digits(4))
def test_national_numbers(approval, cls, year, cat, serial):
    p = parse_certificate_no(f"国械注{approval}{year}{cls}{cat}{serial}")
    if approval == "准" and cls == "2":
        assert p is None
    else:
        assert p is not None and p.device_class == {"2": "II", "3": "III"}[cls] and p.approval == approval
