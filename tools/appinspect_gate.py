#!/usr/bin/env python3
"""Fails unless an AppInspect JSON report has 0 failures and 0 errors; lists the warnings."""
import json
import sys

path, label = sys.argv[1], sys.argv[2]
try:
    report = json.load(open(path))
except (OSError, ValueError) as e:
    sys.exit(f"appinspect {label}: no usable report at {path} ({e}); see {path[:-5]}.log")
summary = report["summary"]
warnings = []
bad = []
for r in report.get("reports", []):
    for group in r.get("groups", []):
        for check in group.get("checks", []):
            res = check.get("result")
            msgs = "; ".join(m.get("message", "")[:200] for m in check.get("messages", []))
            if res == "warning":
                warnings.append(f"{check['name']}: {msgs}")
            elif res in ("failure", "error"):
                bad.append(f"{res} {check['name']}: {msgs}")
print(f"appinspect {label}: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.items())))
for w in warnings:
    print(f"  warning {w}")
for b in bad:
    print(f"  {b}")
if summary.get("failure", 0) or summary.get("error", 0) or summary.get("success", 0) == 0:
    sys.exit(f"appinspect {label}: failures or errors (or nothing ran)")
