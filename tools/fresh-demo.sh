#!/usr/bin/env bash
# The README's first command as a newcomer runs it: `make demo` in a fresh clone of this
# repository (its own target folder, so nothing built before is reused), with musl-gcc,
# apt-get, apt, dpkg and sudo not on PATH. It must build the package and print events.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git clone -q "$root" "$tmp/clone"
mkdir "$tmp/path"
IFS=: read -ra dirs <<< "$PATH"
for d in "${dirs[@]}"; do
  [ -d "$d" ] || continue
  for f in "$d"/*; do
    n=${f##*/}
    case $n in musl-gcc | *-musl-gcc | apt-get | apt | dpkg | sudo) continue ;; esac
    if [ -x "$f" ] && [ ! -e "$tmp/path/$n" ]; then ln -s "$f" "$tmp/path/$n"; fi
  done
done
for hidden in musl-gcc apt-get; do
  if PATH="$tmp/path" command -v "$hidden" >/dev/null; then
    echo "fresh-demo: could not hide $hidden" >&2
    exit 1
  fi
done
echo "fresh-demo: make demo in a fresh clone, without musl-gcc or apt-get on PATH"
PATH="$tmp/path" make -C "$tmp/clone" demo > "$tmp/demo.out" 2> "$tmp/demo.err" || {
  tail -n 30 "$tmp/demo.err" >&2
  exit 1
}
events=$(python3 -c '
import json, sys
n = 0
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("{"):
        json.loads(line)
        n += 1
print(n)' "$tmp/demo.out")
ls "$tmp"/clone/dist/TA-socdefenders-*.spl >/dev/null
if [ "$events" -lt 1 ]; then
  echo "fresh-demo: make demo printed no events" >&2
  exit 1
fi
spl=$(ls "$tmp"/clone/dist/TA-socdefenders-*.spl)
echo "fresh-demo: ok ($events events, ${spl##*/} built, sha256 $(sha256sum "$spl" | cut -d' ' -f1))"
# Reproducible: with no uncommitted change here, the fresh clone's package (built in its own
# folders) must be byte-identical to this checkout's.
mine="$root/dist/${spl##*/}"
if [ -z "$(git -C "$root" status --porcelain)" ]; then
  make -s -C "$root" package >/dev/null
  if ! cmp -s "$spl" "$mine"; then
    echo "fresh-demo: the fresh clone's package differs from $mine: builds are not reproducible" >&2
    python3 - "$spl" "$mine" <<'PY' >&2
import hashlib, sys, tarfile
a, b = (tarfile.open(p) for p in sys.argv[1:3])
da = {m.name: hashlib.sha256(a.extractfile(m).read()).hexdigest() for m in a if m.isfile()}
db = {m.name: hashlib.sha256(b.extractfile(m).read()).hexdigest() for m in b if m.isfile()}
for name in sorted(set(da) | set(db)):
    if da.get(name) != db.get(name):
        print(f"  differs: {name}")
PY
    exit 1
  fi
  echo "fresh-demo: the fresh clone's package is byte-identical to this checkout's"
fi
