"""SMS message templates: default texts, safe rendering and validation.

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

from bot.rules.catalog import CATALOG, COMMON_VARIABLES, TemplateSpec, sample_variables
from bot.rules.segments import count_segments

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
class Problem:
    level: str  # "error" | "warning"
    message: str


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
