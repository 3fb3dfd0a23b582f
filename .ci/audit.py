"""Audit the lock file for known vulnerabilities, failing on any.

pip-audit runs first. It asks PyPI for each pinned release (/pypi/NAME/VERSION/json)
or OSV. Where neither answers, as behind a registry proxy that serves only the
project pages, PyPI's project page (/pypi/NAME/json) still carries PyPI's advisories
for the project's latest release. A pin that is that release is audited from it. Any
other pin is reported as not audited, by name, because nothing was checked for it.

    python .ci/audit.py requirements.lock
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

PYPI_URL = os.environ.get("AUDIT_PYPI_URL", "https://pypi.org")


@dataclass
class Finding:
    name: str
    version: str
    vulns: list[str] = field(default_factory=list)
    audited: bool = True


def pins(lock: str) -> list[tuple[str, str]]:
    """(name, version) of each `name==version` line, markers and comments left out."""
    found = []
    with open(lock) as lines:
        for line in lines:
            requirement = line.split("#", 1)[0].split(";", 1)[0]
            if "==" in requirement:
                name, version = requirement.split("==", 1)
                found.append((name.strip(), version.strip()))
    return found


def pip_audit(lock: str) -> list[Finding] | None:
    """pip-audit's verdict per pin, or None when pip-audit itself did not run."""
    command = ["-m", "pip_audit", "-r", lock, "--format", "json", "--progress-spinner", "off"]
    run = subprocess.run(
        [sys.executable, *command],
        capture_output=True,
        text=True,
    )
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        print(f"audit: pip-audit did not run: {run.stderr.strip()[-500:]}")
        return None
    return [
        Finding(
            package["name"],
            package.get("version", ""),  # a skipped package has none
            [vuln["id"] for vuln in package.get("vulns", [])],
            audited=not package.get("skip_reason"),
        )
        for package in report.get("dependencies", [])
    ]


def from_project_page(name: str, version: str, session: requests.Session) -> Finding:
    """PyPI's advisories for `name` at `version`, if `version` is the latest release."""
    try:
        response = session.get(f"{PYPI_URL}/pypi/{canonicalize_name(name)}/json", timeout=30)
        response.raise_for_status()
        project = response.json()
        latest = project["info"]["version"]
        advisories = project.get("vulnerabilities") or []
        is_latest = Version(latest) == Version(version)  # 4.16 is 4.16.0
    except (requests.RequestException, InvalidVersion, ValueError, KeyError, TypeError):
        return Finding(name, version, audited=False)
    if not is_latest:
        return Finding(name, version, audited=False)
    live = [advisory["id"] for advisory in advisories if not advisory.get("withdrawn")]
    return Finding(name, version, live)


def audit(lock: str, findings: list[Finding] | None) -> list[Finding]:
    """Every pin's finding: pip-audit's where it audited, else the project page's."""
    audited = {canonicalize_name(f.name): f for f in findings or [] if f.audited}
    rest = [pin for pin in pins(lock) if canonicalize_name(pin[0]) not in audited]
    with requests.Session() as session, ThreadPoolExecutor(8) as pool:
        fallback = list(pool.map(lambda pin: from_project_page(*pin, session), rest))
    return [*audited.values(), *fallback]


def report(findings: list[Finding]) -> int:
    vulnerable = [f for f in findings if f.vulns]
    unaudited = [f for f in findings if not f.audited]
    for finding in vulnerable:
        print(f"audit: {finding.name} {finding.version}: {', '.join(finding.vulns)}")
    print(
        f"audit: {len(findings) - len(unaudited)} of {len(findings)} packages audited, "
        f"{len(vulnerable)} with known vulnerabilities"
    )
    if unaudited:
        names = ", ".join(f"{f.name} {f.version}" for f in unaudited)
        print(f"audit: not audited (no advisory service knows these releases): {names}")
    return 1 if vulnerable else 0


def main(argv: list[str]) -> int:
    lock = argv[1]
    return report(audit(lock, pip_audit(lock)))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
