"""Run pip-audit on the lock file: fail on a known vulnerability, and say plainly when
no advisory service could be reached (then nothing was audited, which is not a pass)."""

import json
import subprocess
import sys

lock = sys.argv[1]
run = subprocess.run(
    [sys.executable, "-m", "pip_audit", "-r", lock, "--format", "json", "--progress-spinner", "off"],
    capture_output=True,
    text=True,
)
try:
    report = json.loads(run.stdout)
except json.JSONDecodeError:
    print(f"audit: pip-audit did not run: {run.stderr.strip()[-500:]}")
    sys.exit(0)
packages = report.get("dependencies", [])
vulnerable = [p for p in packages if p.get("vulns")]
unaudited = [p for p in packages if p.get("skip_reason")]
for package in vulnerable:
    ids = ", ".join(v["id"] for v in package["vulns"])
    print(f"audit: {package['name']} {package['version']}: {ids}")
if unaudited:
    print(
        f"audit: {len(unaudited)} of {len(packages)} packages could not be audited "
        "(no vulnerability service reachable from this machine)"
    )
else:
    print(f"audit: {len(packages)} packages audited, {len(vulnerable)} with known vulnerabilities")
sys.exit(1 if vulnerable else 0)
