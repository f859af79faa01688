#!/usr/bin/env python3
"""Stages TA-socdefenders from the sources and writes a reproducible .spl.

The app folder is built from the files git tracks under default/, app/ and bin/, the README
and the built binaries only (Linux ones at bin/linux_<cpu>/socdefenders-iocs, run by the
bin/socdefenders-iocs launcher; Windows at bin/socdefenders-iocs.exe): an untracked or ignored file in those folders (an editor's backup,
a local/ test folder) never ships. `--self-test` shows it. The version comes from Cargo.toml and is stamped
into app.conf. The tarball has sorted entries, fixed times, numeric owner 0 and fixed modes
(644 files, 755 folders and bin/ executables), and gzip without a timestamp, so the same
sources give the same bytes. Prints the path and sha256.

Usage: package.py ROOT BUILD_DIR DIST_DIR PLATFORM=BINARY... (platforms: see PLACES)
       package.py --self-test
"""
import gzip
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile

APP = "TA-socdefenders"
MTIME = 1_700_000_000  # fixed, so rebuilding does not change the bytes


def version(root):
    text = open(os.path.join(root, "Cargo.toml"), encoding="utf-8").read()
    m = re.search(r'^version\s*=\s*"([^"]+)"', text, re.M)
    if not m:
        sys.exit("package: no version in Cargo.toml")
    return m.group(1)


def build_number(v):
    major, minor, patch = (int(x) for x in re.match(r"(\d+)\.(\d+)\.(\d+)", v).groups())
    return major * 1_000_000 + minor * 1_000 + patch


def tracked(root, folder):
    """Paths (relative to `folder`) of the files git tracks under root/folder."""
    out = subprocess.run(["git", "-C", root, "ls-files", "-z", "--", folder],
                         capture_output=True, check=True).stdout.decode()
    return sorted(p[len(folder) + 1:] for p in out.split("\0") if p)


def copy_tracked(root, folder, dest):
    for rel in tracked(root, folder):
        src = os.path.join(root, folder, rel)
        if not os.path.exists(src):  # deleted in the working tree, not yet committed
            continue
        os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
        shutil.copy(src, os.path.join(dest, rel))


# Where each platform's binary goes in the app.
PLACES = {
    "linux_x86_64": "bin/linux_x86_64/socdefenders-iocs",
    "linux_aarch64": "bin/linux_aarch64/socdefenders-iocs",
    "windows_x86_64": "bin/socdefenders-iocs.exe",
}


def without_pe_timestamp(data):
    """A PE file with its COFF header's TimeDateStamp zeroed: the linker writes the build time
    there (Zig's has no switch to leave it out), and nothing reads it to run the program."""
    pe = int.from_bytes(data[0x3C:0x40], "little")
    if data[pe:pe + 4] != b"PE\0\0":
        sys.exit("package: the Windows binary is not a PE file")
    return data[:pe + 8] + b"\0\0\0\0" + data[pe + 12:]


def stage(root, binaries, out_dir):
    """Stages the app with `binaries` ({platform: path}, platforms as in PLACES)."""
    v = version(root)
    dest = os.path.join(out_dir, APP)
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest)
    copy_tracked(root, "default", os.path.join(dest, "default"))
    copy_tracked(root, "app", dest)
    copy_tracked(root, "bin", os.path.join(dest, "bin"))
    for platform, path in sorted(binaries.items()):
        if platform not in PLACES:
            sys.exit(f"package: unknown platform {platform!r}; known: {', '.join(PLACES)}")
        target = os.path.join(dest, PLACES[platform])
        if os.path.exists(target):
            sys.exit(f"package: {PLACES[platform]} is also a tracked file")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        data = open(path, "rb").read()
        if target.endswith(".exe"):
            data = without_pe_timestamp(data)
        open(target, "wb").write(data)
        os.chmod(target, 0o755)
    # The README's binary declaration gets each binary's sha256.
    text = open(os.path.join(root, "README.md"), encoding="utf-8").read()
    for platform in binaries:
        digest = hashlib.sha256(open(os.path.join(dest, PLACES[platform]), "rb").read()).hexdigest()
        text = text.replace(f"(sha256 of the {platform} build: stamped into the packaged README)",
                            f"`{digest}`")
    open(os.path.join(dest, "README.md"), "w", encoding="utf-8").write(text)
    conf = os.path.join(dest, "default", "app.conf")
    text = open(conf, encoding="utf-8").read()
    text = text.replace("@VERSION@", v).replace("@BUILD@", str(build_number(v)))
    open(conf, "w", encoding="utf-8").write(text)
    for dirpath, dirnames, filenames in os.walk(dest):
        for bad in [d for d in dirnames if d.startswith(".") or d == "local"]:
            sys.exit(f"package: refusing to ship {os.path.join(dirpath, bad)}")
        for f in filenames:
            if f.startswith(".") or f == "local.meta":
                sys.exit(f"package: refusing to ship {os.path.join(dirpath, f)}")
    return dest, v


def mode_for(rel, is_dir):
    if is_dir:
        return 0o755
    if rel.split("/")[1:2] == ["bin"]:
        return 0o755
    return 0o644


def write_spl(staged, out_path):
    base = os.path.dirname(staged)
    entries = []
    for dirpath, dirnames, filenames in os.walk(staged):
        for name in dirnames + filenames:
            entries.append(os.path.relpath(os.path.join(dirpath, name), base))
    entries.append(APP)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in sorted(set(entries)):
            full = os.path.join(base, rel)
            is_dir = os.path.isdir(full)
            info = tarfile.TarInfo(rel.replace(os.sep, "/"))
            info.mtime = MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = mode_for(info.name, is_dir)
            if is_dir:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                data = open(full, "rb").read()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    with open(out_path, "wb") as f:
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=9) as gz:
            gz.write(raw.getvalue())


def self_test():
    """A stray file in default/ (untracked) and an ignored one in app/ are not staged."""
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        def write(rel, text):
            os.makedirs(os.path.dirname(os.path.join(d, rel)), exist_ok=True)
            open(os.path.join(d, rel), "w").write(text)
        write("Cargo.toml", '[package]\nversion = "1.2.3"\n')
        write("README.md", "readme")
        write("default/app.conf", "[id]\nversion = @VERSION@\n")
        write("app/metadata/default.meta", "[]\n")
        write(".gitignore", "*.bak\n/target\n")
        write("bin/launcher", "#!/bin/sh\n")
        write("target/binary", "x")
        # A PE header just big enough: its time stamp must come out zeroed.
        pe = bytearray(0x40 + 24)
        pe[0x3C:0x40] = (0x40).to_bytes(4, "little")
        pe[0x40:0x44] = b"PE\0\0"
        pe[0x48:0x4C] = b"\x12\x34\x56\x78"
        os.makedirs(os.path.join(d, "target"), exist_ok=True)
        open(os.path.join(d, "target/binary.exe"), "wb").write(bytes(pe))
        git = ["git", "-C", d, "-c", "user.email=t@t", "-c", "user.name=t"]
        subprocess.run(git + ["init", "-q"], check=True)
        subprocess.run(git + ["add", "-A"], check=True)
        subprocess.run(git + ["commit", "-qm", "x"], check=True)
        write("default/stray.conf", "[oops]\n")
        write("app/metadata/local.meta.bak", "x")
        staged, _ = stage(d, {"linux_x86_64": os.path.join(d, "target/binary"),
                              "windows_x86_64": os.path.join(d, "target/binary.exe")},
                          os.path.join(d, "build"))
        files = sorted(os.path.relpath(os.path.join(p, f), staged)
                       for p, _, fs in os.walk(staged) for f in fs)
        assert files == ["README.md", "bin/launcher", "bin/linux_x86_64/socdefenders-iocs",
                         "bin/socdefenders-iocs.exe", "default/app.conf",
                         "metadata/default.meta"], files
        for rel in ("bin/socdefenders-iocs.exe", "bin/linux_x86_64/socdefenders-iocs"):
            assert os.access(os.path.join(staged, rel), os.X_OK), f"{rel} is not executable when staged"
        exe = open(os.path.join(staged, "bin/socdefenders-iocs.exe"), "rb").read()
        assert exe[0x48:0x4C] == b"\0\0\0\0" and len(exe) == len(pe), exe
    print("package self-test: ok (untracked and ignored files are not staged; PE time stamp zeroed)")


def main():
    if sys.argv[1:2] == ["--self-test"]:
        self_test()
        return
    root, build_dir, dist_dir = sys.argv[1:4]
    binaries = dict(a.split("=", 1) for a in sys.argv[4:])
    os.makedirs(build_dir, exist_ok=True)
    os.makedirs(dist_dir, exist_ok=True)
    staged, v = stage(root, binaries, build_dir)
    out = os.path.join(dist_dir, f"{APP}-{v}.spl")
    write_spl(staged, out)
    digest = hashlib.sha256(open(out, "rb").read()).hexdigest()
    print(f"{out}")
    print(f"sha256 {digest}")


if __name__ == "__main__":
    main()
