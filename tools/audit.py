"""pip-audit over the locked layer requirements and the dev tools, honest about what it could check.

pip-audit reports "No known vulnerabilities found" even when it could audit nothing (its vulnerability
service unreachable, or a registry mirror without PyPI's JSON API). This says how many dependencies were
really audited; exit 1 on a known vulnerability, 0 otherwise (with a warning when nothing could be checked).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = [ROOT / "layers" / "relay" / "requirements.txt", ROOT / "requirements-dev.txt"]


def main() -> int:
    dependencies: list[dict] = []
    for path in FILES:  # one at a time: a hashed lock and an unhashed list cannot be resolved together
        hashed = "--hash=" in path.read_text()
        command = [sys.executable, "-m", "pip_audit", "--progress-spinner", "off", "-f", "json", "-r", str(path)]
        proc = subprocess.run([*command, *(["--require-hashes"] if hashed else [])], capture_output=True, text=True)
        try:
            dependencies += json.loads(proc.stdout).get("dependencies", [])
        except ValueError:
            print(f"pip-audit could not audit {path.name}:\n{proc.stderr[-1500:]}")
    report = {"dependencies": dependencies}
    dependencies = report.get("dependencies", [])
    audited = [d for d in dependencies if "skip_reason" not in d]
    vulnerable = [d for d in audited if d.get("vulns")]
    print(f"pip-audit: {len(audited)} of {len(dependencies)} dependencies audited, {len(vulnerable)} vulnerable")
    for dep in vulnerable:
        ids = ", ".join(v["id"] for v in dep["vulns"])
        print(f"  {dep['name']} {dep['version']}: {ids}")
    if dependencies and not audited:
        reason = dependencies[0].get("skip_reason", "")
        print(f"WARNING: nothing could be audited; the vulnerability service could not be reached ({reason})")
    return 1 if vulnerable else 0


if __name__ == "__main__":
    sys.exit(main())
