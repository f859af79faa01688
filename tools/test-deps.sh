#!/usr/bin/env bash
# The test-only system packages `make test` needs (Debian names), none of them to build:
#   file, libmagic1   package checks and AppInspect (libmagic through python-magic)
#   qemu-user-static  runs the Linux aarch64 binary (make platforms)
#   wine64            runs the Windows x86_64 binary (make platforms)
#   chromium          drives the setup page in a headless browser (tests/web)
# Installed with apt-get when running as root on a Debian-like system (as CI does), and named;
# otherwise `make test` stops here and says which to install.
set -euo pipefail
need=()
command -v file >/dev/null || need+=(file)
ldconfig -p 2>/dev/null | grep -q 'libmagic.so.1 ' || need+=(libmagic1)
[ -x /usr/bin/qemu-aarch64-static ] || need+=(qemu-user-static)
[ -x /usr/lib/wine/wine64 ] || need+=(wine64)
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "make test: installing test-only packages with apt-get: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "make test needs these test-only packages: ${need[*]} (Debian: sudo apt-get install ${need[*]})" >&2
  exit 1
fi
