"""``make audit``: known vulnerabilities in the installed pins, said plainly when unknowable.

pip-audit skips a package whose advisory data it cannot fetch and still prints "No known
vulnerabilities found"; this counts what was really audited and fails when nothing was.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "audit.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip_audit",
                "--progress-spinner",
                "off",
                "--format",
                "json",
                "--output",
                str(report),
            ],
            check=False,
        )
        try:
            deps = json.loads(report.read_text(encoding="utf-8"))["dependencies"]
        except (OSError, ValueError, KeyError):
            print("audit: pip-audit gave no report (see above); nothing was audited")
            return 1
    audited = [d for d in deps if "skip_reason" not in d]
    found = [
        (d["name"], d["version"], v["id"], v.get("fix_versions") or [])
        for d in audited
        for v in d.get("vulns", [])
    ]
    for name, version, vuln, fixes in found:
        print(f"audit: {name} {version}: {vuln} (fixed in {', '.join(fixes) or 'no release yet'})")
    if not audited:
        print(
            f"audit: NOT AUDITED: no vulnerability data could be fetched for any of the "
            f"{len(deps)} installed packages; run `make audit` where pypi.org's JSON API answers"
        )
        return 1
    print(
        f"audit: {len(audited)} packages audited, {len(deps) - len(audited)} without data "
        f"(skipped), {len(found)} known vulnerabilities"
    )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
