#!/usr/bin/env python3
"""Checks the .spl as a Splunk admin would receive it: one top folder, no dotfiles or local/,
the modes AppInspect wants, version stamped from Cargo.toml, every input disabled, the Linux
launcher, and one static, stripped binary per platform (Linux x86_64 and aarch64, Windows
x86_64), each under 4 MiB, the package under 12 MiB, each declared with its sha256 in the
packaged README. Prints the sha256 of each.

Usage: check_package.py SPL VERSION"""
import hashlib
import os
import re
import struct
import subprocess
import sys
import tarfile
import tempfile

spl, expected_version = sys.argv[1], sys.argv[2]
APP = "TA-socdefenders"
# platform -> (path in the app, what `file` must say)
BINARIES = {
    "Linux x86_64": ("bin/linux_x86_64/socdefenders-iocs", ["ELF 64-bit", "x86-64", "static-pie linked", "stripped"]),
    "Linux aarch64": ("bin/linux_aarch64/socdefenders-iocs", ["ELF 64-bit", "ARM aarch64", "static-pie linked", "stripped"]),
    "Windows x86_64": ("bin/socdefenders-iocs.exe", ["PE32+ executable (console) x86-64", "MS Windows"]),
}
# DLLs every Windows x64 has; anything else (libgcc_s, libwinpthread, a VC runtime) would not
# be there on a Splunk host. `api-ms-win-*` are API sets, among them the Universal CRT's,
# part of Windows since Windows 10 and Server 2016 (every Windows that Splunk 9 supports).
WINDOWS_SYSTEM_DLLS = {"kernel32.dll", "ntdll.dll", "advapi32.dll", "bcrypt.dll", "bcryptprimitives.dll",
                       "ws2_32.dll", "msvcrt.dll", "userenv.dll", "secur32.dll", "crypt32.dll", "ole32.dll",
                       "shell32.dll", "user32.dll", "oleaut32.dll", "ncrypt.dll"}
problems = []


def pe_sections_and_imports(data):
    """Section names and the names of the DLLs a PE32+ file imports (its import directory)."""
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    if data[pe:pe + 4] != b"PE\0\0":
        return None
    nsec, opt_size = struct.unpack_from("<H", data, pe + 6)[0], struct.unpack_from("<H", data, pe + 20)[0]
    opt = pe + 24
    if struct.unpack_from("<H", data, opt)[0] != 0x20B:  # PE32+
        return None
    imp_rva = struct.unpack_from("<I", data, opt + 112 + 8)[0]  # data directory 1: imports
    sections = [struct.unpack_from("<8sIIII", data, opt + opt_size + 40 * i) for i in range(nsec)]
    section_names = [s[0].rstrip(b"\0").decode(errors="replace") for s in sections]

    def off(rva):
        for _, vsize, va, rsize, raw in sections:
            if va <= rva < va + max(vsize, rsize):
                return rva - va + raw
        raise ValueError(f"rva {rva:#x} in no section")

    names, at = [], off(imp_rva)
    while True:
        desc = struct.unpack_from("<IIIII", data, at)
        if desc == (0, 0, 0, 0, 0):
            return section_names, names
        name_at = off(desc[3])
        names.append(data[name_at:data.index(b"\0", name_at)].decode().lower())
        at += 20


with tarfile.open(spl) as tar:
    members = tar.getmembers()
    names = [m.name for m in members]
    for m in members:
        top = m.name.split("/")[0]
        if top != APP:
            problems.append(f"entry outside {APP}/: {m.name}")
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
        if f"{APP}/{need}" not in names:
            problems.append(f"missing {need}")
    app_conf = tar.extractfile(f"{APP}/default/app.conf").read().decode()
    if not re.search(rf"^version = {re.escape(expected_version)}$", app_conf, re.M) or "@" in app_conf:
        problems.append("app.conf version not stamped from Cargo.toml")
    inputs = tar.extractfile(f"{APP}/default/inputs.conf").read().decode()
    for stanza in re.split(r"^\[", inputs, flags=re.M)[1:]:
        if "disabled = 1" not in stanza:
            problems.append(f"input ships enabled: [{stanza.splitlines()[0]}")
    launcher = tar.extractfile(f"{APP}/bin/socdefenders-iocs").read() if f"{APP}/bin/socdefenders-iocs" in names else b""
    if not launcher.startswith(b"#!/bin/sh\n") or len(launcher) > 4096:
        problems.append("bin/socdefenders-iocs is not the small POSIX sh launcher")
    binaries = {}
    for platform, (path, _) in BINARIES.items():
        try:
            binaries[platform] = tar.extractfile(f"{APP}/{path}").read()
        except KeyError:
            problems.append(f"missing the {platform} binary {path}")

digests = {}
with tempfile.TemporaryDirectory() as d:
    for platform, data in binaries.items():
        path, want = BINARIES[platform]
        f = os.path.join(d, "bin")
        open(f, "wb").write(data)
        desc = subprocess.run(["file", "-b", f], capture_output=True, text=True).stdout.strip()
        for w in want:
            if w not in desc:
                problems.append(f"{platform} binary: `file` says {desc!r}, not {w!r}")
        if platform.startswith("Windows"):
            sections, dlls = pe_sections_and_imports(data) or ([], [])
            extra = sorted(d for d in set(dlls) - WINDOWS_SYSTEM_DLLS if not d.startswith("api-ms-win-"))
            if not dlls or extra:
                problems.append(f"Windows binary imports DLLs a Windows host may lack: {extra or 'none parsed'}")
            if any(n.startswith(".debug") or n.startswith("/") for n in sections):
                problems.append(f"Windows binary is not stripped: sections {sections}")
        # Test hooks (SOCDEFENDERS_TEST_CRASH_AFTER_PRINT, _NOW, _PANIC) exist in debug builds only.
        if b"SOCDEFENDERS_TEST_" in data:
            problems.append(f"the {platform} binary holds a test hook (SOCDEFENDERS_TEST_*): build it in release")
        if len(data) >= 4 * 1024 * 1024:
            problems.append(f"{platform} binary is {len(data)} bytes, over 4 MiB")
        digests[platform] = (path, hashlib.sha256(data).hexdigest(), len(data))

size = os.path.getsize(spl)
if size >= 12 * 1024 * 1024:
    problems.append(f"package is {size} bytes, over 12 MiB")
# The packaged README declares each binary with its sha256 (stamped by package.py).
with tarfile.open(spl) as tar:
    packaged_readme = tar.extractfile(f"{APP}/README.md").read().decode()
for platform, (path, digest, _) in digests.items():
    row = next((l for l in packaged_readme.splitlines() if l.startswith(f"| `{path}` |")), "")
    if digest not in row:
        problems.append(f"the packaged README does not declare {path} with its sha256 {digest}")
if problems:
    print("package check FAILED:\n  " + "\n  ".join(problems))
    sys.exit(1)
print(f"package check ok: {len(names)} entries, {size} bytes")
for platform, (path, digest, n) in digests.items():
    print(f"  {platform}: {path}, {n} bytes, sha256 {digest}")
