#!/usr/bin/env python3
"""Interoperability with a real TAXII 2.1 server: medallion (the OASIS reference server).

Builds a data set with the stix2 library (every pattern kind the input maps, compound and
qualified patterns, revoked and multi-version indicators, CVEs, identities, markings,
relationships, malware, several collections, far more objects than one page), starts
medallion on loopback with a memory backend, and walks one collection with the real binary
through many runs while objects are added between runs (each POST shares one date_added,
so pages end inside groups). Then it compares the printed events with the data set: every
expected (indicator version, type, value) exactly once, nothing from other collections.

Usage: taxii_interop.py BINARY   (run with the venv's python, which has medallion and stix2)
"""
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter

import stix2

BIN = os.path.abspath(sys.argv[1])
KEY = "sk_test_FAKEKEY0000"
TAXII = "application/taxii+json;version=2.1"
AUTH = "Basic " + base64.b64encode(f"apikey:{KEY}".encode()).decode()
COLS = {
    "91a7b528-80eb-42ed-a74d-c6fbd5a26116": "All IOCs",
    "52892447-4d7e-4f70-b94d-d7f22742ff63": "IPs only",
    "64993447-4d7e-4f70-b94d-d7f33742ee63": "Hashes only",
}
WALKED = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"
failures = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(url, method="GET", body=None):
    req = urllib.request.Request(url, method=method, data=body)
    req.add_header("Authorization", AUTH)
    req.add_header("Accept", TAXII)
    if body is not None:
        req.add_header("Content-Type", TAXII)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"{}")


n_ind = 0
expected = []  # (stix_id, modified, type, value) of every version posted
latest = {}  # stix_id -> modified of its newest version
firsts = []  # the first domain indicator of each batch, re-versioned later


def indicator(pattern, values, **kw):
    """An indicator; `values` are the (type, value) pairs it must become (None: stix-pattern)."""
    global n_ind
    n_ind += 1
    ind = stix2.Indicator(
        pattern=pattern, pattern_type="stix", valid_from="2026-01-01T00:00:00Z",
        indicator_types=["malicious-activity"], confidence=kw.pop("confidence", 85),
        labels=["interop"], name=f"interop indicator {n_ind}", **kw)
    expect(ind, values if values is not None else [("stix-pattern", pattern)])
    return ind


def stamp(obj):
    """`modified` exactly as the object is serialized (and served)."""
    return json.loads(obj.serialize())["modified"]


def expect(obj, values):
    latest[obj.id] = stamp(obj)
    for t, v in values:
        expected.append((obj.id, stamp(obj), t, v))


def batch(k):
    """A batch of varied objects; k makes values unique."""
    objs = [
        indicator(f"[ipv4-addr:value = '198.51.{k}.1']", [("ipv4", f"198.51.{k}.1")]),
        indicator(f"[ipv6-addr:value = '2001:db8:{k:x}::/48']", [("ipv6", f"2001:db8:{k:x}::/48")]),
        indicator(f"[domain-name:value = 'c2-{k}.example']", [("domain", f"c2-{k}.example")]),
        indicator(f"[url:value = 'http://bad-{k}.example/a?b=c']", [("url", f"http://bad-{k}.example/a?b=c")]),
        indicator(f"[email-addr:value = 'phish{k}@mail.example']", [("email", f"phish{k}@mail.example")]),
        indicator(f"[file:hashes.MD5 = '{k:032x}']", [("md5", f"{k:032x}")]),
        indicator(f"[file:hashes.'SHA-1' = '{k:040x}']", [("sha1", f"{k:040x}")]),
        indicator(f"[file:hashes.'SHA-256' = '{k:064x}']", [("sha256", f"{k:064x}")]),
        indicator(f"[file:hashes.'SHA-512' = '{k:0128x}']", [("sha512", f"{k:0128x}")]),
        indicator(f"[file:name = 'dropper{k}.exe']", [("file_name", f"dropper{k}.exe")]),
        indicator(f"[domain-name:value = 'or-{k}.example' OR domain-name:value = 'or2-{k}.example'] OR [ipv4-addr:value = '203.0.{k}.7']",
                  [("domain", f"or-{k}.example"), ("domain", f"or2-{k}.example"), ("ipv4", f"203.0.{k}.7")]),
        indicator(f"[url:value = 'http://it\\'s-{k}.example/']", [("url", f"http://it's-{k}.example/")]),
        indicator(f"[file:hashes.MD5 = '{k:032x}' AND file:name = 'x{k}.dll']", None),
        indicator(f"[ipv4-addr:value = '192.0.2.{k}'] FOLLOWEDBY [domain-name:value = 'f-{k}.example'] WITHIN 600 SECONDS", None),
        indicator(f"[ipv4-addr:value = '192.0.2.{k}'] REPEATS 3 TIMES", None),
        indicator(f"[ipv4-addr:value != '192.0.2.{k}']", None),
        stix2.Identity(name=f"Org {k}", identity_class="organization"),
        stix2.Malware(name=f"malware {k}", is_family=False),
    ]
    vuln = stix2.Vulnerability(name=f"CVE-2026-{1000 + k}", external_references=[{"source_name": "cve", "external_id": f"CVE-2026-{1000 + k}"}])
    expect(vuln, [("cve", f"CVE-2026-{1000 + k}")])
    objs.append(vuln)
    objs.append(stix2.Relationship(source_ref=objs[0].id, target_ref=objs[17].id, relationship_type="indicates"))
    firsts.append(objs[2])
    return objs


def main():
    work = tempfile.mkdtemp(prefix="taxii-interop-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data = {
        "/discovery": {"title": "interop", "description": "medallion for TA-socdefenders tests",
                       "contact": "none", "default": f"{base}/api1/", "api_roots": [f"{base}/api1/"]},
        "api1": {
            "information": {"title": "api1", "description": "", "versions": [TAXII], "max_content_length": 104857600},
            "status": [],
            "collections": [
                {"id": cid, "title": title, "description": "", "can_read": True, "can_write": True,
                 "media_types": ["application/stix+json;version=2.1"], "objects": [], "manifest": []}
                for cid, title in COLS.items()
            ],
        },
    }
    with open(os.path.join(work, "data.json"), "w") as f:
        json.dump(data, f)
    config = {
        "backend": {"module": "medallion.backends.memory_backend", "module_class": "MemoryBackend",
                    "filename": os.path.join(work, "data.json"), "session_timeout": 30},
        "users": {"apikey": KEY},
        "taxii": {"max_page_size": 50},
    }
    with open(os.path.join(work, "config.json"), "w") as f:
        json.dump(config, f)
    medallion = os.path.join(os.path.dirname(sys.executable), "medallion")
    server = subprocess.Popen([medallion, "--host", "127.0.0.1", "--port", str(port), os.path.join(work, "config.json")],
                              stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "medallion.log"), "w"))
    try:
        for _ in range(100):
            try:
                request(f"{base}/taxii2/")
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        else:
            sys.exit("medallion did not start; see " + os.path.join(work, "medallion.log"))

        def post(cid, objs):
            env = {"objects": [json.loads(o.serialize()) for o in objs]}
            status = request(f"{base}/api1/collections/{cid}/objects/", "POST", json.dumps(env).encode())
            if status.get("failure_count"):
                failures.append(f"medallion refused objects: {status}")

        def walked_post(objs):
            post(WALKED, objs)

        # Objects in other collections must never show up.
        other = stix2.Indicator(pattern="[ipv4-addr:value = '10.66.66.66']", pattern_type="stix", valid_from="2026-01-01T00:00:00Z")
        post("52892447-4d7e-4f70-b94d-d7f22742ff63", [other])
        marking = stix2.MarkingDefinition(definition_type="statement", definition={"statement": "interop test data"})
        walked_post([marking])
        for k in range(1, 4):
            walked_post(batch(k))

        env = {"PATH": "/usr/bin:/bin", "SOCDEFENDERS_API_KEY": KEY, "SOCDEFENDERS_APP_DIR": os.path.join(work, "app"),
               "SOCDEFENDERS_STATE_DIR": os.path.join(work, "state"), "SOCDEFENDERS_RETRIES": "0"}
        args = [BIN, "--source", "taxii", "--taxii-url", f"{base}/taxii2/", "--collection", "All IOCs",
                "--limit", "7", "--max-pages", "2", "--since", "2020-01-01T00:00:00Z"]
        printed = Counter()
        revoked_events = []
        stderr_log = []
        pending = list(range(4, 9))
        runs = 0
        quiet = 0
        while runs < 200 and quiet < 3:
            res = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
            runs += 1
            stderr_log.append(res.stderr)
            if res.returncode != 0:
                failures.append(f"run {runs} exited {res.returncode}: {res.stderr.strip()}")
                break
            lines = [json.loads(l) for l in res.stdout.splitlines()]
            for e in lines:
                printed[(e["stix_id"], e["last_seen"], e["type"], e["value"])] += 1
                if e.get("revoked"):
                    revoked_events.append(e)
            if pending and runs % 3 == 0:
                k = pending.pop(0)
                objs = batch(k)
                # a new version of an indicator from an earlier batch, and a revoked one
                first = firsts[k % 3]
                newer = first.new_version(description=f"seen again in batch {k}")
                expect(newer, [(t, v) for (i, _, t, v) in expected if i == first.id][:1])
                revoked = objs[0].new_version(revoked=True)
                walked_post(objs)
                walked_post([newer, revoked])
                expect(revoked, [("ipv4", f"198.51.{k}.1")])
            quiet = quiet + 1 if not lines and not pending else 0

        # The server serves the newest version of each object (match[version]=last): every value
        # of every newest version must be printed exactly once; an older version may have been
        # printed before it was superseded, at most once; nothing else may appear.
        allowed = set(expected)
        final = [e for e in expected if latest[e[0]] == e[1]]
        missing = [e for e in final if printed[e] == 0]
        repeated = [e for e, n in printed.items() if n > 1]
        unexpected = [e for e in printed if e not in allowed]
        if missing:
            failures.append(f"{len(missing)} expected values never printed, e.g. {missing[:3]}")
        if repeated:
            failures.append(f"{len(repeated)} values printed more than once, e.g. {repeated[:3]}")
        if unexpected:
            failures.append(f"{len(unexpected)} values nobody posted, e.g. {unexpected[:3]}")
        revoked_seen = [e for e in revoked_events if e.get("revoked") is True]
        if not revoked_seen:
            failures.append("no revoked indicator was printed with revoked=true")
        leaked = [e for e in printed if e[3] == "10.66.66.66"]
        if leaked:
            failures.append("an object of another collection was printed")
        kinds = Counter(t for (_, _, t, _) in printed)
        for kind in ["ipv4", "ipv6", "domain", "url", "email", "md5", "sha1", "sha256", "sha512", "file_name", "stix-pattern", "cve"]:
            if not kinds[kind]:
                failures.append(f"no {kind} event at all")
        log = "".join(stderr_log)
        if "level=ERROR" in log:
            failures.append("an ERROR line was logged")
        older = sum(1 for e in printed if latest[e[0]] != e[1])
        summary = (f"medallion interop: {runs} runs, {sum(printed.values())} events printed, {len(final)} newest-version values "
                   f"expected, {older} values of older versions printed before they were superseded")
        print(summary)
        print(f"{1 if not failures else 0} passed, {len(failures)} failed")
        for f in failures:
            print("  FAILED: " + f)
        sys.exit(1 if failures else 0)
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
