"""The dependency audit (.ci/audit.py) against a PyPI-like server on loopback that
serves only project pages, as the registry proxy on this machine does."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
AUDIT_SCRIPT = ROOT / ".ci" / "audit.py"
LOCK = ROOT / "requirements.lock"

#: Project pages by canonical name: the latest release and PyPI's advisories for it.
PROJECTS: dict[str, Any] = {
    "flask": {"info": {"version": "3.1.3"}, "vulnerabilities": []},
    "ecdsa": {
        "info": {"version": "0.19.2"},
        "vulnerabilities": [
            {"id": "GHSA-wj6h-64fc-37mp", "withdrawn": None},
            {"id": "PYSEC-2000-1", "withdrawn": "2024-01-01T00:00:00Z"},
        ],
    },
    "typing-extensions": {"info": {"version": "4.16.0"}, "vulnerabilities": []},
    "requests": {"info": {"version": "2.34.2"}, "vulnerabilities": []},
}


class FakePyPI(BaseHTTPRequestHandler):
    asked: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.asked.append(self.path)
        name = self.path.removeprefix("/pypi/").removesuffix("/json")
        if name == "garbled":
            body, status = b"<html>not json</html>", 200
        elif name in PROJECTS:
            body, status = json.dumps(PROJECTS[name]).encode(), 200
        else:
            body, status = b"", 404
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def audit(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakePyPI)
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    spec = importlib.util.spec_from_file_location("ci_audit", AUDIT_SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "ci_audit", module)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "PYPI_URL", f"http://127.0.0.1:{server.server_port}")
    FakePyPI.asked = []
    yield module
    server.shutdown()
    server.server_close()


def lock_file(tmp_path: Path, *pins: str) -> str:
    path = tmp_path / "requirements.lock"
    path.write_text("# pinned\n" + "\n".join(pins) + "\n")
    return str(path)


def test_a_pin_at_the_latest_release_is_audited_from_the_project_page(audit, tmp_path, capsys):
    lock = lock_file(tmp_path, "Flask==3.1.3", "ecdsa==0.19.2")

    findings = audit.audit(lock, None)

    assert sorted((f.name, f.vulns, f.audited) for f in findings) == [
        ("Flask", [], True),
        ("ecdsa", ["GHSA-wj6h-64fc-37mp"], True),
    ]
    assert audit.report(findings) == 1
    out = capsys.readouterr().out
    assert "audit: ecdsa 0.19.2: GHSA-wj6h-64fc-37mp" in out
    assert "PYSEC-2000-1" not in out, "a withdrawn advisory is not a finding"
    assert "2 of 2 packages audited, 1 with known vulnerabilities" in out


def test_names_are_asked_for_in_their_canonical_form(audit, tmp_path):
    lock = lock_file(tmp_path, "typing_extensions==4.16")  # and 4.16 is the latest, 4.16.0

    [finding] = audit.audit(lock, None)

    assert finding.audited and FakePyPI.asked == ["/pypi/typing-extensions/json"]


def test_an_older_pin_or_an_unknown_or_garbled_page_is_named_not_audited(audit, tmp_path, capsys):
    pins = ("Flask==3.0.0", "nosuchproject==1.0", "garbled==2.0", "requests==2.34.2")
    lock = lock_file(tmp_path, *pins)

    findings = audit.audit(lock, None)

    assert audit.report(findings) == 0, "nothing known is vulnerable"
    out = capsys.readouterr().out
    assert "1 of 4 packages audited, 0 with known vulnerabilities" in out
    assert "not audited (no advisory service knows these releases): " in out
    for pin in ("Flask 3.0.0", "nosuchproject 1.0", "garbled 2.0"):
        assert pin in out
    assert "requests 2.34.2" not in out


def test_pip_audits_verdicts_stand_and_only_what_it_skipped_is_asked_again(audit, tmp_path, capsys):
    lock = lock_file(tmp_path, "Flask==3.0.0", "requests==2.34.2")
    from_pip_audit = [
        audit.Finding("flask", "3.0.0", ["GHSA-m2qf-hxjv-5gpq"]),
        audit.Finding("requests", "2.34.2", audited=False),
    ]

    findings = audit.audit(lock, from_pip_audit)

    assert FakePyPI.asked == ["/pypi/requests/json"]
    assert audit.report(findings) == 1
    out = capsys.readouterr().out
    assert "audit: flask 3.0.0: GHSA-m2qf-hxjv-5gpq" in out
    assert "2 of 2 packages audited, 1 with known vulnerabilities" in out


def test_the_lock_pins_every_package_the_project_installs(audit):
    """CI installs with `-c requirements.lock`, which leaves an unpinned package free to
    drift and the audit blind to it; so every package the project needs is pinned."""
    pinned = {canonicalize_name(name) for name, _ in audit.pins(str(LOCK))}
    needed: set[str] = set()
    todo = [("smartrr-sms-bot", {"dev"})]
    while todo:
        distribution, extras = todo.pop()
        for spec in metadata.requires(distribution) or []:
            dependency = Requirement(spec)
            marker = dependency.marker
            if marker and not any(marker.evaluate({"extra": extra}) for extra in extras | {""}):
                continue
            if canonicalize_name(dependency.name) not in needed:
                needed.add(canonicalize_name(dependency.name))
                todo.append((dependency.name, dependency.extras))

    assert needed - pinned == set()
