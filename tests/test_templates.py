from __future__ import annotations

import math
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.rules.catalog import CATALOG, COMMON_VARIABLES, SAMPLE_VARIABLES, sample_variables
from bot.rules.segments import count_segments
from bot.rules.templates import (
    TEMPLATE_DIR,
    Problem,
    TemplateError,
    default_source,
    render,
    validate,
)

INJECTIONS = [
    "{{ config }}",
    "{{ ''.__class__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{% for i in range(10**9) %}x{% endfor %}",
    "{{ 9**9**9 }}",
    "{{ shop_name['__class__'] }}",
    "{{ lipsum() }}",
    "{% set x = 1 %}{{ x }}",
    "{% include 'help.txt' %}",
    "{{ shop_name|attr('__class__') }}",
]


def errors(problems: list[Problem]) -> list[str]:
    return [p.message for p in problems if p.level == "error"]


def warnings(problems: list[Problem]) -> list[str]:
    return [p.message for p in problems if p.level == "warning"]


# --- catalog and default copy -----------------------------------------------------------------


def test_every_catalog_entry_has_a_default_file_and_no_file_is_orphaned() -> None:
    assert {path.stem for path in TEMPLATE_DIR.glob("*.txt")} == set(CATALOG)


def test_sample_variables_cover_every_variable_in_the_catalog() -> None:
    used = {v for spec in CATALOG.values() for v in spec.variables} | set(COMMON_VARIABLES)
    assert used <= set(SAMPLE_VARIABLES)


@pytest.mark.parametrize("name", list(CATALOG))
def test_default_template_validates_cleanly_and_renders(name: str) -> None:
    source = default_source(name)
    assert validate(name, source) == []
    text = render(source, SAMPLE_VARIABLES)
    assert text.startswith(f"{SAMPLE_VARIABLES['shop_name']}: ")
    assert count_segments(text).encoding == "GSM-7"
    assert count_segments(render(source, sample_variables(name))).segments <= 2


def test_default_source_of_unknown_template_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match="nope"):
        default_source("nope")


def test_upcoming_order_renders_the_merchant_wording() -> None:
    text = render(default_source("upcoming_order"), SAMPLE_VARIABLES)
    assert text == (
        "Bean Box: Heads up: your upcoming subscription (Dark Roast Coffee) will ship in 3 days, "
        "on Dec 5. Not quite ready? Just reply SKIP to skip it or DELAY to push it back. "
        "Reply HELP for more, STOP to opt out."
    )


@pytest.mark.parametrize(
    ("days_until", "expected"), [(1, "in 1 day,"), ("1", "in 1 day,"), (3, "in 3 days,")]
)
def test_upcoming_order_says_day_or_days(days_until: object, expected: str) -> None:
    text = render(default_source("upcoming_order"), {**SAMPLE_VARIABLES, "days_until": days_until})
    assert expected in text


def test_pause_confirmed_without_resume_date_only_offers_resume() -> None:
    text = render(default_source("pause_confirmed"), {**SAMPLE_VARIABLES, "resume_date": ""})
    assert "restart on" not in text
    assert "Reply RESUME anytime" in text
    dated = render(default_source("pause_confirmed"), SAMPLE_VARIABLES)
    assert "Jan 9" in dated


def test_next_order_says_when_the_subscription_is_paused() -> None:
    source = default_source("next_order")
    assert "paused" in render(source, {**SAMPLE_VARIABLES, "status": "PAUSED"})
    assert "paused" not in render(source, SAMPLE_VARIABLES)


def test_which_subscription_preview_uses_subscription_options() -> None:
    text = render(default_source("which_subscription"), sample_variables("which_subscription"))
    assert "1) Dark Roast Coffee (Dec 5)" in text


# --- render -----------------------------------------------------------------------------------


def test_render_names_an_undefined_variable() -> None:
    with pytest.raises(TemplateError, match="Unknown variable 'frist_name'"):
        render("Hi {{ frist_name }}", SAMPLE_VARIABLES)


def test_render_normalises_whitespace() -> None:
    source = "  Hi\t\t{{ first_name }}  ,   there  \r\n\r\n\r\n\r\nBye   now \n line3  \n"
    assert render(source, {"first_name": "Sam"}) == "Hi Sam , there\n\nBye now\nline3"


def test_render_treats_none_as_empty_text() -> None:
    assert render("[{{ resume_date }}]", {"resume_date": None}) == "[]"


def test_render_allows_the_harmless_constructs() -> None:
    source = (
        "{{ shop_name|upper }} {{ nickname|default('friend')|title }} "
        "{% if status == 'PAUSED' and not products %}a{% elif status != 'X' %}b{% else %}c"
        "{% endif %} {{ products|truncate(9, True, '') }}"
    )
    variables = {"shop_name": "Bean Box", "status": "ACTIVE", "products": "Dark Roast Coffee"}
    assert render(source, variables) == "BEAN BOX Friend b Dark Roas"


def test_render_caps_the_output_at_1600_characters() -> None:
    assert len(render("{{ products }}", {"products": "x" * 1600})) == 1600
    with pytest.raises(TemplateError, match="1,601"):
        render("{{ products }}", {"products": "x" * 1601})


def test_render_reports_a_syntax_error_with_its_line() -> None:
    with pytest.raises(TemplateError, match="line 2"):
        render("Hi\n{{ shop_name }\n", SAMPLE_VARIABLES)


# --- injection --------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", INJECTIONS)
def test_injection_is_refused_by_validate(payload: str) -> None:
    assert errors(validate("help", payload))


@pytest.mark.parametrize("payload", INJECTIONS)
def test_injection_is_a_quick_template_error_in_render(payload: str) -> None:
    started = time.monotonic()
    with pytest.raises(TemplateError):
        render(payload, SAMPLE_VARIABLES)
    assert time.monotonic() - started < 1.0


def test_class_access_never_renders_the_class() -> None:
    try:
        text = render("{{ ''.__class__ }}", SAMPLE_VARIABLES)
    except TemplateError as exc:
        text = str(exc)
    assert "<class" not in text


# --- validate ---------------------------------------------------------------------------------


def test_validate_suggests_the_closest_variable() -> None:
    messages = errors(validate("upcoming_order", "{{ shop_name }}: hi {{ frist_name }} STOP"))
    assert len(messages) == 1
    assert "Unknown variable 'frist_name'" in messages[0]
    assert "did you mean 'first_name'" in messages[0]


def test_validate_refuses_a_variable_of_another_template() -> None:
    assert errors(validate("help", "{{ shop_name }}: {{ products }}"))


def test_validate_reports_a_syntax_error_with_its_line() -> None:
    messages = errors(validate("help", "Hello\nthere\n{% if shop_name %}x"))
    assert len(messages) == 1
    assert messages[0].startswith("Syntax error on line 3")


def test_validate_refuses_a_for_loop() -> None:
    messages = errors(validate("help", "{% for c in shop_name %}{{ c }}{% endfor %}"))
    assert any("for loops" in m for m in messages)


def test_validate_refuses_a_filter_outside_the_allow_list() -> None:
    messages = errors(validate("help", "{{ shop_name|center(80) }}"))
    assert any("Filter 'center'" in m for m in messages)


def test_validate_refuses_empty_output() -> None:
    assert errors(validate("help", "{% if shop_name == 'x' %}hi{% endif %}"))


def test_validate_warns_when_a_first_message_does_not_say_stop() -> None:
    assert CATALOG["opt_in_confirmed"].first_message
    found = warnings(validate("opt_in_confirmed", "{{ shop_name }}: welcome back!"))
    assert any("STOP" in w for w in found)
    fixed = "{{ shop_name }}: welcome back! Reply STOP to opt out."
    assert validate("opt_in_confirmed", fixed) == []


def test_validate_does_not_ask_for_stop_in_replies() -> None:
    assert validate("action_failed", "{{ shop_name }}: sorry, that failed.") == []


def test_validate_names_the_characters_that_force_ucs2() -> None:
    found = warnings(validate("action_failed", "{{ shop_name }}: we’re on it 😀"))
    assert len(found) == 1
    assert "’" in found[0]
    assert "😀" in found[0]


def test_validate_warns_about_a_message_longer_than_three_segments() -> None:
    found = warnings(validate("action_failed", "{{ shop_name }}: " + "sorry " * 80))
    assert any("segments" in w for w in found)


def test_validate_warns_that_variables_compare_as_text() -> None:
    source = "{{ shop_name }}: {% if days_until == 1 %}tomorrow{% endif %} STOP"
    assert any('"1"' in w for w in warnings(validate("upcoming_order", source)))


def test_validate_of_unknown_template_name_is_a_template_error() -> None:
    with pytest.raises(TemplateError):
        validate("nope", "hi")


# --- segments ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "encoding", "length", "segments"),
    [
        ("", "GSM-7", 0, 0),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),
        ("€" * 81, "GSM-7", 162, 2),
        ("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà", "GSM-7", 42, 1),
        ("^{}\\[~]|€", "GSM-7", 18, 1),
        ("ж" * 70, "UCS-2", 70, 1),
        ("ж" * 71, "UCS-2", 71, 2),
        ("😀" * 35, "UCS-2", 70, 1),
        ("ж" * 134, "UCS-2", 134, 2),
        ("ж" * 135, "UCS-2", 135, 3),
    ],
)
def test_count_segments(text: str, encoding: str, length: int, segments: int) -> None:
    result = count_segments(text)
    assert (result.encoding, result.length, result.segments) == (encoding, length, segments)


def test_one_emoji_switches_to_ucs2_and_is_named() -> None:
    result = count_segments("See you soon 😀")
    assert result.encoding == "UCS-2"
    assert result.ucs2_chars == ("😀",)
    assert result.length == 15


def test_curly_apostrophe_forces_ucs2_and_is_named_once() -> None:
    result = count_segments("We’re sorry, we’re on it")
    assert result.encoding == "UCS-2"
    assert result.ucs2_chars == ("’",)


def test_ucs2_chars_are_listed_in_order_of_first_appearance() -> None:
    assert count_segments("a“b”c“").ucs2_chars == ("“", "”")


def test_an_escape_sequence_is_not_split_across_segments() -> None:
    # 152 + 2 + 152 = 306 septets, but the € cannot start in the last septet of part one.
    assert count_segments("a" * 152 + "€" + "a" * 152).segments == 3


def test_a_surrogate_pair_is_not_split_across_segments() -> None:
    assert count_segments("ж" * 66 + "😀" + "ж" * 66).segments == 3


@given(st.text() | st.text(alphabet="ab €{}😀ж’\n", max_size=600))
def test_segments_are_consistent_with_length_and_encoding(text: str) -> None:
    result = count_segments(text)
    assert (result.encoding == "GSM-7") == (result.ucs2_chars == ())
    assert len(set(result.ucs2_chars)) == len(result.ucs2_chars)
    assert all(char in text for char in result.ucs2_chars)
    if result.encoding == "UCS-2":
        assert result.length == len(text.encode("utf-16-le", "surrogatepass")) // 2
        single, multi = 70, 67
    else:
        assert len(text) <= result.length <= 2 * len(text)
        single, multi = 160, 153
    if result.length == 0:
        assert result.segments == 0
    elif result.length <= single:
        assert result.segments == 1
    else:
        # Each full part holds at least multi - 1 units: a 2-unit character may not fit its end.
        assert math.ceil(result.length / multi) <= result.segments
        assert (result.segments - 1) * (multi - 1) < result.length
