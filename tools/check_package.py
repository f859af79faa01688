#!/usr/bin/env python3
"""Checks the .spl as a Splunk admin would receive it: one top folder, no dotfiles or local/,
the modes AppInspect wants, version stamped from Cargo.toml, and a static binary."""
import re
import subprocess
import sys
import tarfile

spl, expected_version = sys.argv[1], sys.argv[2]
problems = []
with tarfile.open(spl) as tar:
    members = tar.getmembers()
    names = [m.name for m in members]
    for m in members:
        top = m.name.split("/")[0]
        if top != "TA-socdefenders":
            problems.append(f"entry outside TA-socdefenders/: {m.name}")
        parts = m.name.split("/")
        if any(p.startswith(".") for p in parts) or "local" in parts[1:2] or m.name.endswith("local.meta"):
            problems.append(f"must not ship: {m.name}")
        if m.uid != 0 or m.gid != 0 or m.mtime != 1_700_000_000:
            problems.append(f"not normalised: {m.name}")
        want = 0o755 if (m.isdir() or parts[1:2] == ["bin"]) else 0o644
        if m.mode != want:
            problems.append(f"mode {oct(m.mode)} != {oct(want)}: {m.name}")
    if names != sorted(names):
        problems.append("entries are not sorted")
    for need in ["default/app.conf", "default/inputs.conf", "default/props.conf",
                 "default/socdefenders.conf", "README/socdefenders.conf.spec",
                 "metadata/default.meta", "bin/socdefenders-iocs", "static/appIcon.png",
                 "static/appIcon_2x.png", "README.md"]:
        if f"TA-socdefenders/{need}" not in names:
            problems.append(f"missing {need}")
    app_conf = tar.extractfile("TA-socdefenders/default/app.conf").read().decode()
    if not re.search(rf"^version = {re.escape(expected_version)}$", app_conf, re.M) or "@" in app_conf:
        problems.append("app.conf version not stamped from Cargo.toml")
    inputs = tar.extractfile("TA-socdefenders/default/inputs.conf").read().decode()
    for stanza in re.split(r"^\[", inputs, flags=re.M)[1:]:
        if "disabled = 1" not in stanza:
            problems.append(f"input ships enabled: [{stanza.splitlines()[0]}")
    binary = tar.extractfile("TA-socdefenders/bin/socdefenders-iocs").read()
open("/tmp/socdefenders-iocs.check", "wb").write(binary)
desc = subprocess.run(["file", "-b", "/tmp/socdefenders-iocs.check"], capture_output=True, text=True).stdout
if "statically linked" not in desc and "static-pie linked" not in desc:
    problems.append(f"binary is not static: {desc.strip()}")
# Test hooks (SOCDEFENDERS_TEST_CRASH_AFTER_PRINT, _NOW, _PANIC) exist in debug builds only.
if b"SOCDEFENDERS_TEST_" in binary:
    problems.append("the packaged binary holds a test hook (SOCDEFENDERS_TEST_*): build it in release")
if len(binary) >= 4 * 1024 * 1024:
    problems.append(f"binary is {len(binary)} bytes, over 4 MiB")
if problems:
    print("package check FAILED:\n  " + "\n  ".join(problems))
    sys.exit(1)
print(f"package check ok: {len(names)} entries, binary {len(binary)} bytes, {desc.strip()}")
