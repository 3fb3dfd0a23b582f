"""SMS message templates: the catalog, safe rendering, validation and segment counting.

Merchants edit these templates in the console, so a template is treated as untrusted input:
it may only print variables and constants, apply a few harmless filters and branch with
`if`. Every variable reaches the template as text (`None` becomes ""), so a preview with
SAMPLE_VARIABLES behaves exactly like a real send: compare with `days_until == "1"`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import jinja2
from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment

MAX_LENGTH = 1600  # Twilio refuses longer message bodies
MAX_SOURCE_LENGTH = 5000  # bounds parsing time and output of constants
MAX_SEGMENTS_WARNING = 3
ALLOWED_FILTERS: tuple[str, ...] = (
    "upper",
    "lower",
    "title",
    "capitalize",
    "trim",
    "default",
    "d",
    "truncate",
)
TEMPLATE_DIR: Path = Path(__file__).resolve().parents[2] / "templates" / "sms"


class TemplateError(ValueError):
    """A template cannot be used; the message is meant for the merchant."""


@dataclass(frozen=True)
class TemplateSpec:
    name: str
    title: str
    description: str
    variables: tuple[str, ...]
    first_message: bool = False


@dataclass(frozen=True)
class Problem:
    level: str  # "error" | "warning"
    message: str


@dataclass(frozen=True)
class Segments:
    encoding: str  # "GSM-7" or "UCS-2"
    length: int  # GSM-7 septets or UTF-16 code units
    segments: int
    ucs2_chars: tuple[str, ...]


COMMON_VARIABLES: tuple[str, ...] = ("shop_name", "first_name", "account_page_link")
#: What every reply about one subscription can say (the order date after the change, too).
SUBSCRIPTION_VARIABLES: tuple[str, ...] = (
    "products",
    "next_order_date",
    "new_delivery_date",
    "days_until",
)

_SPECS = (
    TemplateSpec(
        "upcoming_order",
        "Upcoming order reminder",
        "Sent a few days before a subscription order ships.",
        ("products", "next_order_date", "days_until"),
        first_message=True,
    ),
    TemplateSpec(
        "skip_confirmed",
        "Skip confirmed",
        "The subscriber replied SKIP and the order was skipped.",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "already_skipped",
        "Already skipped",
        "The subscriber replied SKIP again for an order that is already skipped.",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "delay_options",
        "Delay options",
        "The subscriber replied DELAY without saying for how long.",
        ("options",),
    ),
    TemplateSpec(
        "delay_confirmed",
        "Delay confirmed",
        "The order was pushed back to a new date.",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "delay_refused",
        "Delay refused",
        "The requested delay is too long, in the past or not understood.",
        ("max_delay_days",),
    ),
    TemplateSpec(
        "pause_options",
        "Pause options",
        "The subscriber replied PAUSE without saying for how long; options are the pause "
        "lengths set in Settings.",
        ("options",),
    ),
    TemplateSpec(
        "pause_refused",
        "Pause refused",
        "The requested pause is longer than the longest pause set in Settings, or in the past.",
        ("max_pause_days",),
    ),
    TemplateSpec(
        "pause_confirmed",
        "Pause confirmed",
        "The subscription was paused until resume_date, when it restarts by itself.",
        (*SUBSCRIPTION_VARIABLES, "resume_date"),
    ),
    TemplateSpec(
        "resume_confirmed",
        "Resume confirmed",
        "The subscriber replied RESUME and the subscription is active again.",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "undo_confirmed",
        "Undo confirmed",
        "The subscriber replied UNDO and their last change was reverted.",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "nothing_to_undo",
        "Nothing to undo",
        "The subscriber replied UNDO but there is no recent change to revert.",
        (),
    ),
    TemplateSpec(
        "next_order",
        "Next order",
        "The subscriber replied NEXT; status is PAUSED when the subscription is paused.",
        (*SUBSCRIPTION_VARIABLES, "status"),
    ),
    TemplateSpec(
        "help",
        "Help",
        "The subscriber replied HELP: lists every keyword.",
        (),
    ),
    TemplateSpec(
        "fallback",
        "Not understood",
        "The reply was not understood; nothing was changed.",
        (),
    ),
    TemplateSpec(
        "which_subscription",
        "Which subscription",
        "The subscriber has several subscriptions and must pick one.",
        ("options",),
    ),
    TemplateSpec(
        "no_subscription",
        "No subscription found",
        "No active subscription matches the subscriber's phone number.",
        (),
    ),
    TemplateSpec(
        "opt_out_confirmed",
        "Opt-out confirmed",
        "The subscriber asked to stop in their own words (carriers answer the STOP keyword).",
        (),
    ),
    TemplateSpec(
        "opt_in_confirmed",
        "Opt-in confirmed",
        "The subscriber replied START and will get texts again.",
        (),
        first_message=True,
    ),
    TemplateSpec(
        "cancel_info",
        "Cancellation info",
        "The subscriber asked to cancel: cancelling is done on the account page.",
        (),
    ),
    TemplateSpec(
        "cancel_confirm",
        "Confirm cancellation",
        "Asks the subscriber to reply YES before cancelling.",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "cancel_confirmed",
        "Cancellation confirmed",
        "The subscription was cancelled.",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "action_failed",
        "Action failed",
        "The change could not be made because of an error; the team follows up.",
        (),
    ),
    TemplateSpec(
        "action_rejected",
        "Action rejected",
        "Smartrr refused the change; reason is a short sentence explaining why.",
        ("reason",),
    ),
    TemplateSpec(
        "rate_limited",
        "Too many messages",
        "The subscriber sent many messages in a short time; the team will look.",
        (),
    ),
    # Event texts: sent when a subscription changes outside a conversation with the bot.
    TemplateSpec(
        "event_welcome",
        "Welcome",
        "A new subscription started. Often the first text a subscriber gets: carriers want "
        "the brand, what the texts are for, 'Msg & data rates may apply' and STOP/HELP.",
        SUBSCRIPTION_VARIABLES,
        first_message=True,
    ),
    TemplateSpec(
        "event_skipped",
        "Order skipped",
        "The next order was skipped in the customer portal or by support.",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "event_unskipped",
        "Skip undone",
        "A skipped order was put back in the customer portal or by support.",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "event_date_changed",
        "Order date changed",
        "The next order date was moved in the customer portal or by support.",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "event_paused",
        "Subscription paused",
        "The subscription was paused outside a text; resume_date is empty when it does not "
        "resume by itself.",
        (*SUBSCRIPTION_VARIABLES, "resume_date"),
    ),
    TemplateSpec(
        "event_resumed",
        "Subscription resumed",
        "A paused subscription is active again (resumed by itself, in the portal or by support).",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "event_cancelled",
        "Subscription cancelled",
        "A subscription was cancelled while the subscriber has others still running.",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "event_goodbye",
        "Last subscription cancelled",
        "The subscriber's last running subscription was cancelled.",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "event_payment_failed",
        "Payment failed",
        "A payment failed; ask the subscriber to update their card on the account page. "
        "Dropped if a payment succeeds or the card is updated before it leaves.",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "event_payment_method_updated",
        "Payment method updated",
        "The subscriber's payment method was updated.",
        SUBSCRIPTION_VARIABLES,
    ),
    TemplateSpec(
        "event_resume_reminder",
        "Resume reminder",
        "Sent 7 days before a paused subscription restarts by itself on resume_date.",
        (*SUBSCRIPTION_VARIABLES, "resume_date"),
    ),
)
CATALOG: dict[str, TemplateSpec] = {spec.name: spec for spec in _SPECS}

SAMPLE_VARIABLES: dict[str, str] = {
    "shop_name": "Bean Box",
    "first_name": "Sam",
    "account_page_link": "https://beanbox.example/account",
    "products": "Dark Roast Coffee",
    "next_order_date": "Dec 5",
    "days_until": "3",
    "new_delivery_date": "Dec 19",
    "options": "1 for 1 week, 2 for 2 weeks, 3 for 1 month",
    "max_delay_days": "60",
    "max_pause_days": "92",
    "resume_date": "Jan 9",
    "status": "ACTIVE",
    "reason": "This order is already being prepared for shipping.",
}
# `options` means different lists in different templates; previews should read naturally.
_SAMPLE_OVERRIDES: dict[str, dict[str, str]] = {
    "which_subscription": {"options": "1) Dark Roast Coffee on Dec 5, 2) Green Tea on Dec 9"},
    "pause_options": {"options": "1) 1 month 2) 2 months 3) 3 months"},
}


def sample_variables(name: str) -> dict[str, str]:
    """Return the sample values to preview template `name` with."""
    return SAMPLE_VARIABLES | _SAMPLE_OVERRIDES.get(name, {})


def _spec(name: str) -> TemplateSpec:
    try:
        return CATALOG[name]
    except KeyError:
        raise TemplateError(f"Unknown template '{name}'") from None


@cache
def default_source(name: str) -> str:
    """Return the default text of template `name` from templates/sms/<name>.txt."""
    _spec(name)
    try:
        return (TEMPLATE_DIR / f"{name}.txt").read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(f"Default text for '{name}' is missing: {exc}") from None


# --- rendering --------------------------------------------------------------------------------


def _make_environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # Nothing but the variables we pass: `cycler`, `range`, `lipsum`... would be ways out.
    env.globals.clear()
    env.tests.clear()
    env.filters = {name: env.filters[name] for name in ALLOWED_FILTERS}
    return env


_ENV = _make_environment()
_UNDEFINED = re.compile(r"^'(?P<name>[^']*)' is undefined$")
_INLINE_SPACE = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def _parse(source: str) -> nodes.Template:
    if len(source) > MAX_SOURCE_LENGTH:
        raise TemplateError(f"Template is too long (over {MAX_SOURCE_LENGTH:,} characters)")
    try:
        return _ENV.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"Syntax error on line {exc.lineno}: {exc.message}") from None
    except RecursionError:
        raise TemplateError("Template is too deeply nested") from None


@lru_cache(maxsize=256)
def _compile(source: str) -> jinja2.Template:
    tree = _parse(source)
    problems = _inspect(tree).errors
    if problems:
        raise TemplateError(problems[0])
    try:
        return _ENV.from_string(tree)
    except Exception as exc:
        raise TemplateError(f"Template cannot be compiled: {exc}") from None


def _normalise(text: str) -> str:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    text = "\n".join(_INLINE_SPACE.sub(" ", line).strip() for line in lines)
    return _BLANK_LINES.sub("\n\n", text).strip()


def render(source: str, variables: Mapping[str, object]) -> str:
    """Render a template safely with `variables` (as text); raise TemplateError on any failure."""
    template = _compile(source)
    try:
        context = {key: "" if value is None else str(value) for key, value in variables.items()}
        text = _normalise(template.render(context))
    except jinja2.UndefinedError as exc:
        match = _UNDEFINED.match(exc.message or "")
        message = f"Unknown variable '{match['name']}'" if match else str(exc.message)
        raise TemplateError(message) from None
    except Exception as exc:  # the contract: any failure is the template's problem
        raise TemplateError(f"Template cannot be rendered: {exc}") from None
    if len(text) > MAX_LENGTH:
        raise TemplateError(f"Message is {len(text):,} characters; the limit is {MAX_LENGTH:,}")
    return text


# --- validation -------------------------------------------------------------------------------

_CONSTRUCT_NAMES: dict[type[nodes.Node], str] = {
    nodes.Getattr: "attribute access ('.')",
    nodes.Getitem: "item access ('[...]')",
    nodes.Call: "function calls",
    nodes.For: "for loops",
    nodes.Assign: "{% set %}",
    nodes.AssignBlock: "{% set %}",
    nodes.Macro: "macros",
    nodes.CallBlock: "{% call %}",
    nodes.Include: "{% include %}",
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% import %}",
    nodes.Extends: "{% extends %}",
    nodes.Block: "{% block %}",
    nodes.FilterBlock: "{% filter %}",
    nodes.With: "{% with %}",
    nodes.Test: "'is' tests",
    nodes.BinExpr: "arithmetic",
    nodes.UnaryExpr: "arithmetic",
    nodes.Concat: "'~' concatenation",
    nodes.Literal: "lists, tuples and dicts",
}


@dataclass
class _Findings:
    errors: list[str]
    warnings: list[str]
    names: list[str]


def _describe(node: nodes.Node) -> str:
    for node_type, label in _CONSTRUCT_NAMES.items():
        if isinstance(node, node_type):
            return label
    return f"'{type(node).__name__}'"


def _children(node: nodes.Node, findings: _Findings) -> Iterator[nodes.Node]:
    """Yield the sub-nodes worth inspecting, recording anything that is not allowed."""
    match node:
        case nodes.Template() | nodes.Output():
            yield from node.iter_child_nodes()
        case nodes.TemplateData():
            pass
        case nodes.Const():
            pass
        case nodes.Name():
            findings.names.append(node.name)
        case nodes.If():
            yield node.test
            yield from node.body
            yield from node.elif_
            yield from node.else_
        case nodes.CondExpr() | nodes.And() | nodes.Or() | nodes.Not():
            yield from node.iter_child_nodes()
        case nodes.Compare():
            operands = [node.expr, *(op.expr for op in node.ops)]
            if any(isinstance(o, nodes.Const) and type(o.value) in (int, float) for o in operands):
                findings.warnings.append(
                    'Variables are text, so compare them with text: write "1", not 1'
                )
            yield from operands
        case nodes.Filter() if node.name not in ALLOWED_FILTERS:
            findings.errors.append(
                f"Filter '{node.name}' is not allowed; use one of: {', '.join(ALLOWED_FILTERS)}"
            )
        case nodes.Filter() if node.dyn_args is None and node.dyn_kwargs is None:
            if node.node is not None:
                yield node.node
            yield from node.args
            yield from (keyword.value for keyword in node.kwargs)
        case _:
            findings.errors.append(f"Not allowed in a message template: {_describe(node)}")


def _inspect(tree: nodes.Template) -> _Findings:
    findings = _Findings([], [], [])
    pending: list[nodes.Node] = [tree]
    while pending:
        pending.extend(reversed(list(_children(pending.pop(), findings))))
    findings.errors = list(dict.fromkeys(findings.errors))
    findings.warnings = list(dict.fromkeys(findings.warnings))
    return findings


def _unknown_variable(name: str, allowed: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(name, allowed, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else "."
    return f"Unknown variable '{name}'{hint} Available: {', '.join(allowed)}"


_REPLACEMENTS = {"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-", "…": "..."}


def _ucs2_warning(chars: tuple[str, ...]) -> str:
    listed = ", ".join(f"{char} (U+{ord(char):04X})" for char in chars)
    hints = [f"{char} -> {_REPLACEMENTS[char]}" for char in chars if char in _REPLACEMENTS]
    message = f"These characters make every segment hold 70 characters instead of 160: {listed}"
    return message + (f". Replace {', '.join(hints)}" if hints else "")


def validate(name: str, source: str) -> list[Problem]:
    """Check a template before it is saved; errors block saving, warnings do not."""
    spec = _spec(name)
    try:
        findings = _inspect(_parse(source))
    except TemplateError as exc:
        return [Problem("error", str(exc))]
    allowed = COMMON_VARIABLES + spec.variables
    unknown = [n for n in dict.fromkeys(findings.names) if n not in allowed]
    errors = findings.errors + [_unknown_variable(n, allowed) for n in unknown]
    if errors:
        return [Problem("error", message) for message in errors]
    problems = [Problem("warning", message) for message in findings.warnings]
    try:
        text = render(source, sample_variables(name))
    except TemplateError as exc:
        return [*problems, Problem("error", f"Cannot render with the sample values: {exc}")]
    if not text:
        return [*problems, Problem("error", "The message is empty")]
    if spec.first_message and not re.search(r"\bstop\b", text, re.IGNORECASE):
        problems.append(
            Problem(
                "warning",
                "This can be the first text a subscriber gets: say how to opt out "
                "(for example 'Reply STOP to opt out')",
            )
        )
    sample = count_segments(text)
    if sample.segments > MAX_SEGMENTS_WARNING:
        problems.append(
            Problem(
                "warning",
                f"The sample message takes {sample.segments} segments; "
                f"try to keep it to {MAX_SEGMENTS_WARNING} or fewer",
            )
        )
    ucs2 = tuple(dict.fromkeys(count_segments(source).ucs2_chars + sample.ucs2_chars))
    if ucs2:
        problems.append(Problem("warning", _ucs2_warning(ucs2)))
    return problems


# --- segments ---------------------------------------------------------------------------------

# GSM 03.38 default alphabet (the escape code 0x1B left out) and its extension table.
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENSION = frozenset("\f^{}\\[~]|€")


def _count_parts(weights: list[int], single: int, multi: int) -> int:
    # A two-unit character (escape sequence, surrogate pair) is never split across parts,
    # so a long message can need one part more than ceil(length / multi).
    total = sum(weights)
    if total <= single:
        return 1 if total else 0
    parts, used = 1, 0
    for weight in weights:
        if used + weight > multi:
            parts, used = parts + 1, 0
        used += weight
    return parts


def count_segments(text: str) -> Segments:
    """Count the SMS segments `text` needs, GSM-7 when possible, else UCS-2."""
    ucs2 = tuple(dict.fromkeys(c for c in text if c not in _GSM_BASIC and c not in _GSM_EXTENSION))
    if ucs2:
        weights = [2 if ord(c) > 0xFFFF else 1 for c in text]
        return Segments("UCS-2", sum(weights), _count_parts(weights, 70, 67), ucs2)
    weights = [2 if c in _GSM_EXTENSION else 1 for c in text]
    return Segments("GSM-7", sum(weights), _count_parts(weights, 160, 153), ())
