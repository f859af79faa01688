#!/usr/bin/env python3
"""`make bench`: whole-process timings of socdefenders-iocs against the guide's curl | jq and
the curl transfer floor, on pre-rendered pages served from memory on loopback.

For each case every command runs RUNS times, the order rotating each round; each run of our
binary gets a fresh state dir (so it does the full work: fetch, print to a file, save the
checkpoint). Wall time, CPU time (user+sys) and peak RSS come from bench/measure (a static C
launcher, see its header for why). Prints a Markdown table, the ratios, and each target with
PASS or MISS.

Usage: run.py BINARY BENCH_SERVER MEASURE [RUNS] [LAUNCHER]

LAUNCHER is the packaged app's bin/socdefenders-iocs (the Linux launcher): the idle case also
runs through it, and its overhead (the difference of the medians) has a target.
"""
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid

BIN, SERVER, MEASURE = (os.path.abspath(p) for p in sys.argv[1:4])
RUNS = int(sys.argv[4]) if len(sys.argv) > 4 else 11
LAUNCHER = os.path.abspath(sys.argv[5]) if len(sys.argv) > 5 else None
KEY = "sk_bench_not_a_real_key"
work = tempfile.mkdtemp(prefix="socdefenders-bench-")
data = os.path.join(work, "data")
os.makedirs(data)


def record(i):
    """One IOC in the API's full record shape, about 600 bytes."""
    kinds = [("ipv4", f"203.0.{(i // 250) % 250}.{i % 250}"), ("domain", f"login-portal-{i}.example"),
             ("url", f"http://malware-{i}.example/dl/payload.bin"),
             ("sha256", f"{i:064x}")]
    t, v = kinds[i % len(kinds)]
    art = str(uuid.UUID(int=i * 7919 + 1))
    return {
        "id": str(uuid.UUID(int=i + 1)), "type": t, "value": v, "confidence": ["high", "medium", "low"][i % 3],
        "first_seen": "2026-11-01T08:00:00Z",
        "last_seen": f"2026-11-{26 - (i // 86400) % 20:02d}T{23 - (i // 3600) % 24:02d}:{59 - (i // 60) % 60:02d}:{59 - i % 60:02d}Z",
        "source": {"article_id": art, "article_title": "Threat actor expands phishing infrastructure targeting finance",
                   "article_url": f"https://socdefenders.ai/item/{art}", "reference_url": None,
                   "feed_name": "URLhaus", "category": "threat-intel", "origin": "feed"},
        "context": "Observed as command-and-control infrastructure in a campaign delivering loader malware.",
        "tags": ["c2", "loader", "phishing"], "mitre_techniques": ["T1071", "T1566"],
    }


def page(n):
    return {"data": [record(i) for i in range(n)],
            "meta": {"total": n, "limit": n, "offset": 0, "generated_at": "2026-11-27T00:00:00Z"},
            "links": {"self": "https://socdefenders.ai/api/v1/iocs", "next": None}}


def stix_page(n):
    objs = []
    for i in range(n):
        objs.append({
            "type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.UUID(int=i + 1)}",
            "created": "2026-11-01T00:00:00.000Z", "modified": "2026-11-01T00:00:00.000Z",
            "name": f"Malicious IPv4 Address - 198.51.{i // 250 % 250}.{i % 250}",
            "indicator_types": ["malicious-activity"],
            "pattern": f"[ipv4-addr:value = '198.51.{i // 250 % 250}.{i % 250}']", "pattern_type": "stix",
            "valid_from": "2026-11-01T00:00:00Z", "confidence": 85, "labels": ["c2", "botnet"],
            "object_marking_refs": ["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"],
        })
    return {"more": False, "objects": objs}


routes = []
sizes = {}
for n in (100, 10_000, 100_000):
    name = f"p{n}.json"
    body = json.dumps(page(n), separators=(",", ":")).encode()
    open(os.path.join(data, name), "wb").write(body)
    # our binary appends /api/v1/iocs to base_url, so each size has its own prefix
    routes.append(f"/n{n}/api/v1/iocs {name} application/json")
    sizes[n] = len(body)
taxii_body = json.dumps(stix_page(1000), separators=(",", ":")).encode()
open(os.path.join(data, "objects.json"), "wb").write(taxii_body)
routes.append("/taxii/collections/c1/objects/ objects.json application/taxii+json;version=2.1 "
              "X-TAXII-Date-Added-Last=2026-11-01T00:00:00.000000Z")
open(os.path.join(data, "routes.txt"), "w").write("\n".join(routes) + "\n")

srv = subprocess.Popen([SERVER, data], stdout=subprocess.PIPE, text=True)
port = int(srv.stdout.readline())
base = f"http://127.0.0.1:{port}"
os.environ.clear()
os.environ.update({"PATH": "/usr/bin:/bin", "SOCDEFENDERS_API_KEY": KEY,
                   "SOCDEFENDERS_APP_DIR": os.path.join(work, "no-app")})


def measure(argv, out):
    # Each run starts with an empty output file and nothing waiting for writeback. Otherwise the
    # launcher's O_TRUNC would free the previous command's output (68 MB for the largest page)
    # inside this command's timing, earlier runs' output would be flushed during later runs, and
    # a state dir created just before would make the checkpoint's fdatasync also persist that
    # new directory (in steady state the state dir has existed since the first run).
    open(out, "w").close()
    os.sync()
    res = subprocess.run([MEASURE, out, "--"] + argv, capture_output=True, text=True, check=True)
    wall, user, sys_, rss, status = (int(x) for x in res.stdout.split())
    if status != 0:
        raise SystemExit(f"{argv[0]} exited {status}")
    return wall / 1000.0, (user + sys_) / 1000.0, rss / 1024.0


def state(**fields):
    """A checkpoint as the binary writes it, with some fields set."""
    st = {"version": 1, "input": "default", "filters": "", "cursor": None, "recent": [],
          "not_before_ms": None, "budget_day": "", "budget_used": 0, "backlog": None,
          "last_success": None}
    st.update(fields)
    return st


def state_dir(checkpoint=None):
    """A fresh state dir for one run (outside the measurement), seeded if asked."""
    d = tempfile.mkdtemp(dir=work)
    if checkpoint:
        json.dump(checkpoint, open(os.path.join(d, "default.json"), "w"))
    return d


IOFLOOR = os.path.join(os.path.dirname(MEASURE), "iofloor")
IO_FLOOR = "transfer, spill file, copy to stdout; no parsing (bench/iofloor.c)"


def versus(ours, url, jq_filter, io_floor=False):
    """Our run against the guide's curl | jq and the curl transfer floor, on the same URL; for
    REST pages also the least I/O any implementation that holds the page back must do."""
    cmds = {
        "socdefenders-iocs": ours,
        f"curl | jq -c '{jq_filter}'": lambda: ["/bin/sh", "-c", f"curl -s '{url}' | jq -c '{jq_filter}'"],
        "curl -o /dev/null (floor)": lambda: ["curl", "-s", url, "-o", "/dev/null"],
    }
    if io_floor:
        path = "/" + url.split("/", 3)[3]
        cmds[IO_FLOOR] = lambda: [IOFLOOR, str(port), path, work]
    return cmds


def rest_case(n):
    return versus(lambda: [BIN, "--base-url", f"{base}/n{n}", "--state-dir", state_dir(),
                           "--since", "2020-01-01T00:00:00Z", "--tier", "pro", "--limit", "10000",
                           "--max-body-bytes", str(1 << 30)],
                  f"{base}/n{n}/api/v1/iocs", ".data[]", io_floor=True)


def taxii_case():
    # The objects URL is normally discovered and then cached in the checkpoint; seed the cache
    # so every measured run does exactly one objects request, as a steady-state run does.
    url = f"{base}/taxii/collections/c1/objects/"
    fp = (f"source=Taxii taxii_url={base}/taxii/ collection=c1 base_url=https://socdefenders.ai "
          f"type= confidence= category= industry=")
    seeded = state(filters=fp, taxii={"added_after": "2020-01-01T00:00:00.000000Z", "objects_url": url,
                                      "resolved_from": fp, "collection_title": "c1", "behind_runs": 0})
    return versus(lambda: [BIN, "--state-dir", state_dir(seeded), "--source", "taxii",
                           "--taxii-url", f"{base}/taxii/", "--collection", "c1",
                           "--since", "2020-01-01T00:00:00Z", "--tier", "pro"],
                  url, ".objects[]")


def idle_case():
    paused = state(not_before_ms=4102444800000)
    cmds = {"socdefenders-iocs": lambda: [BIN, "--base-url", f"{base}/n100", "--state-dir", state_dir(paused)],
            "/bin/true (process start floor)": lambda: ["/bin/true"]}
    if LAUNCHER:
        cmds[LAUNCHER_NAME] = lambda: [LAUNCHER, "--base-url", f"{base}/n100", "--state-dir", state_dir(paused)]
    return cmds


LAUNCHER_NAME = "bin/socdefenders-iocs (launcher, then the binary)"


def run_case(cmds):
    results = {k: [] for k in cmds}
    names = list(cmds)
    out = os.path.join(work, "out")
    for r in range(RUNS):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            results[name].append(measure(cmds[name](), out))
    return results


def stat(xs):
    return statistics.median(xs), min(xs), max(xs)


def fmt(xs, unit, digits=1):
    m, lo, hi = stat(xs)
    return f"{m:.{digits}f} {unit} ({lo:.{digits}f}–{hi:.{digits}f})"


cases = [(f"REST page of {n:,} IOCs ({sizes[n] / 1e6:.2f} MB)", rest_case(n)) for n in (100, 10_000, 100_000)]
cases.append((f"TAXII page of 1,000 STIX indicators ({len(taxii_body) / 1e6:.2f} MB)", taxii_case()))
cases.append(("run with nothing to do (rate-limit pause in force)", idle_case()))

all_results = {}
lines = []
lines.append("| Case | Command | Wall, median (min–max) | CPU user+sys | Peak RSS | Wall vs floor | curl+jq wall / ours |")
lines.append("|---|---|---|---|---|---|---|")
for title, cmds in cases:
    res = run_case(cmds)
    all_results[title] = res
    floor = next((statistics.median(w for w, _, _ in v) for k, v in res.items() if k.endswith("(floor)")), None)
    jq = next((statistics.median(w for w, _, _ in v) for k, v in res.items() if "jq" in k), None)
    for name, rows in res.items():
        walls = [w for w, _, _ in rows]
        cpus = [c for _, c, _ in rows]
        rss = [m for _, _, m in rows]
        med = statistics.median(walls)
        vs_floor = f"{med / floor:.2f}×" if floor else "–"
        vs_jq = f"{jq / med:.1f}×" if (jq and name == "socdefenders-iocs") else "–"
        cell = name.replace("|", "\\|")  # a pipe would end the Markdown table cell
        lines.append(f"| {title} | `{cell}` | {fmt(walls, 'ms', 2)} | {fmt(cpus, 'ms', 1)} | {fmt(rss, 'MiB', 1)} | {vs_floor} | {vs_jq} |")
srv.kill()

def med(title_part, name, idx):
    for title, res in all_results.items():
        if title_part in title:
            return statistics.median(r[idx] for r in res[name])

ours = "socdefenders-iocs"
floor_name = "curl -o /dev/null (floor)"
t10k_wall, t10k_floor = med("10,000 IOCs", ours, 0), med("10,000 IOCs", floor_name, 0)
t10k_jq = med("10,000 IOCs", "curl | jq -c '.data[]'", 0)
rss_small, rss_big = med("of 100 IOCs", ours, 2), med("100,000 IOCs", ours, 2)
rss_max = max(max(r[2] for r in res[ours]) for res in all_results.values())
size = os.path.getsize(BIN) / 2**20
targets = [
    ("10,000-IOC page: wall at most 2× the curl floor", t10k_wall <= 2 * t10k_floor, f"{t10k_wall:.1f} ms vs 2 × {t10k_floor:.1f} ms"),
    ("10,000-IOC page: at least 5× faster than curl | jq", t10k_jq >= 5 * t10k_wall, f"{t10k_jq / t10k_wall:.1f}×"),
    ("100-IOC page: under 5 ms wall", med("of 100 IOCs", ours, 0) < 5, f"{med('of 100 IOCs', ours, 0):.2f} ms"),
    ("nothing to do: under 2 ms wall", med("nothing to do", ours, 0) < 2, f"{med('nothing to do', ours, 0):.2f} ms"),
    ("peak RSS under 16 MiB in every case", rss_max < 16, f"max {rss_max:.1f} MiB"),
    ("100,000-IOC page RSS at most 1.5× the 100-IOC page's", rss_big <= 1.5 * rss_small, f"{rss_big:.1f} vs {rss_small:.1f} MiB ({rss_big / rss_small:.2f}×)"),
    ("stripped static binary under 4 MiB", size < 4, f"{size:.2f} MiB"),
]
if LAUNCHER:
    extra = med("nothing to do", LAUNCHER_NAME, 0) - med("nothing to do", ours, 0)
    targets.append(("the Linux launcher adds under 1 ms a run", extra < 1, f"{extra:.2f} ms"))
tx_wall, tx_floor = med("TAXII page", ours, 0), med("TAXII page", floor_name, 0)
targets.append(("1,000-object TAXII page: wall at most 2× the curl floor", tx_wall <= 2 * tx_floor,
                f"{tx_wall:.1f} ms vs 2 × {tx_floor:.1f} ms ({tx_wall / tx_floor:.2f}×)"))

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
print(f"Machine: {cpu}, {os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
      f"Linux {platform.release()}; {RUNS} runs per command, order rotating; loopback server serving from memory.")
print(f"Binary: {os.path.basename(BIN)} {size:.2f} MiB (static, stripped).")
print()
print("\n".join(lines))
print()
print("| Target | Result | Measured |")
print("|---|---|---|")
for name, ok, got in targets:
    print(f"| {name.replace('|', chr(92) + '|')} | {'PASS' if ok else 'MISS'} | {got} |")
io = med("10,000 IOCs", IO_FLOOR, 0)
print()
print(f"For reference, the 10,000-IOC page with no parsing at all ({IO_FLOOR}): "
      f"{io:.1f} ms, {io / t10k_floor:.2f}× the curl floor.")
shutil.rmtree(work, ignore_errors=True)
