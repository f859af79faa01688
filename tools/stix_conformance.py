#!/usr/bin/env python3
"""Differential test of our STIX pattern parser against the OASIS reference validator.

Corpus: every string in the validator's own v2.1 tests (stix2-patterns, installed in the venv),
every string in the OASIS matcher's v2.1 tests (stix2-matcher's source distribution, given as
a folder), our own edge cases, and MUTATIONS seeded mutations of all of those. For each
pattern the validator (`run_validator(p, '2.1')`; an exception counts as a refusal) and our
parser (examples/stix_verdicts) give a verdict; they must agree, except where our documented
limits apply (patterns over 256 KiB, more than 64 nested parentheses). Where both accept and
our parser reduces the pattern to (type, value) pairs, the pairs the validator's inspector
finds must be the same; and where the inspector finds a pattern made only of OR-ed simple
equalities on the paths we map, we must reduce it.

Usage: stix_conformance.py VERDICTS_BINARY MATCHER_SOURCE_DIR [MUTATIONS]
"""
import ast
import json
import os
import random
import re
import subprocess
import sys

import stix2patterns
from stix2patterns.v21.pattern import Pattern
from stix2patterns.validator import run_validator

MAX_BYTES = 256 * 1024
MAX_DEPTH = 64

OURS = [
    "[file:size == 1280]", "[file:size <> 1280]", "[x:y = .5]", "[x:y = +.5]", "[x:y = -.5]",
    "[file:name IN ()]", "[NOT EXISTS file:name]", "[EXISTS file:name]",
    "[ file : name . 'x' [ 0 ] = 'a' ]", "[a:b\u00a0=\u2028'c']", "[a:b\u000b=\u000c'c']",
    "[a:b = 'c'] /* c */ AND // line\n [d:e = 'f']", "/* c */ [a:b = 1]", "\u001c[a:b = 1]",
    "[a:b = 'c'] WITHIN 0 SECONDS", "[a:b = 'c'] REPEATS 0 TIMES", "[a:b = b'====']",
    "[a:b = b'YQ==']", "[a:b = b'YWI=']", "[a:b = b'']", "[a:b = h'']", "[a:b = h'abc']",
    "[a:b = t'2016-06-01t00:00:00Z']", "[a:b = t'2016-06-01 00:00:00Z']",
    "[a:b = t'2016-06-01T00:00:60.5Z']", "[a:b-c = 1]", "[a:OR = 'x']", "[a:true = 1]",
    "[a:1b = 'x']", "[a:b = 007]", "[a:b = 01.5]", "[a:b = 1.]", "[a:b[-1] = 1]",
    "[a:b[+1] = 1]", "[file:hashes[0] = 'x']", "[file:hashes[*] = 'x']",
    "[file:hashes.'SHA-256' = 'f00']", "[file:hashes.MD5 = 'not-a-hash']",
    "[file:hashes.MD5 = 'cead3f77f6cda6ec00f57d76c9a6879f\n']",
    "[file:hashes.md6 = 'cead3f77f6cda6ec00f57d76c9a6879fzz']", "[file:hashes.SSDEEP = 'a:b']",
    "[file:hashes.sha_256 = 'f00']", "[file:hashes.'SHA-1' = 'cead3f77f6cda6ec00f57d76c9a6879fcead3f77']",
    "[file:hashes.MD5 IN ('cead3f77f6cda6ec00f57d76c9a6879f')]",
    "[ipv4-addr:value = '1.2.3.4'] OR [domain-name:value = 'a.example']",
    "[ipv4-addr:value IN ('1.2.3.4', '5.6.7.8')]", "[url:value = 'it\\'s \\\\ here']",
    "[a:b = 1] WITHIN 5 SECONDS WITHIN 6 SECONDS", "([a:b = 1]) WITHIN 5 SECONDS WITHIN 6 SECONDS",
    "[a:b = 'c'] within 2 seconds", "[a:b = 'c\\n']", "[a:b = 'é日本']", "[é:b = 1]",
    "([ipv4-addr:value = '1.2.3.4'])", "[(ipv4-addr:value = '1.2.3.4')]",
    "[email-addr:value = 'a@b.example' OR file:name = 'x.exe']",
]

PIECES = [
    "AND", "OR", "NOT", "IN", "LIKE", "MATCHES", "ISSUBSET", "ISSUPERSET", "EXISTS", "FOLLOWEDBY",
    "()", "(", ")", "[", "]", "'", "\\", "\\'", "\\\\", "==", "<>", "=", "!=", "<", ">=", ".5", "-1",
    "+1", "007", "1.", "0", "3.14", "t'2016-06-01T00:00:00Z'", "t'2016-13-01T00:00:00Z'",
    "b'YQ=='", "b'===='", "h'ab'", "h'abc'", "/* c */", "/*", "*/", "//c\n", " ", "\u00a0", "\u2028",
    "\u000b", "\u001c", "\t", "\n", "WITHIN 1 SECONDS", "WITHIN 0.5 SECONDS", "REPEATS 2 TIMES",
    "START t'2016-06-01T00:00:00Z' STOP t'2016-06-02T00:00:00Z'", "true", "false", ":", ".",
    "*", "[*]", "[0]", "[-1]", "x", "-", "_", "hashes", "MD5", "'SHA-256'", "'x y'",
    "cead3f77f6cda6ec00f57d76c9a6879f", "é", "\u0000", ",", "ipv4-addr:value", "file:name",
    "'1.2.3.4'", "within", "and",
]


def strings_in(path):
    """Every string constant in a Python file (the tests' patterns among them)."""
    out = []
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.append(node.value)
    return out


def corpus(matcher_dir):
    base = os.path.join(os.path.dirname(stix2patterns.__file__), "test", "v21")
    seeds = []
    for f in sorted(os.listdir(base)):
        p = os.path.join(base, f)
        if f.endswith(".py"):
            seeds += strings_in(p)
        elif f.endswith(".txt"):
            seeds += [l.rstrip("\n") for l in open(p, encoding="utf-8") if l.strip()]
    mdir = os.path.join(matcher_dir, "stix2matcher", "test", "v21")
    for f in sorted(os.listdir(mdir)):
        if f.endswith(".py"):
            seeds += strings_in(os.path.join(mdir, f))
    seeds = [s for s in seeds if "[" in s] + OURS
    return list(dict.fromkeys(seeds))


def mutate(rng, text):
    for _ in range(rng.randint(1, 3)):
        at = rng.randint(0, len(text))
        op = rng.randint(0, 3)
        if op == 0 and text:
            text = text[:at] + text[at + 1:]
        elif op == 1:
            text = text[:at] + rng.choice(PIECES) + text[at + 1:]
        elif op == 2:
            # swap two characters
            if len(text) > 2:
                i = rng.randrange(len(text) - 1)
                text = text[:i] + text[i + 1] + text[i] + text[i + 2:]
        else:
            text = text[:at] + rng.choice(PIECES) + text[at:]
    return text


def oasis(p):
    """(valid, crashed)"""
    try:
        return (len(run_validator(p, "2.1")) == 0, False)
    except Exception:
        return (False, True)


MAPPED = {("ipv4-addr", ("value",)): "ipv4", ("ipv6-addr", ("value",)): "ipv6",
          ("domain-name", ("value",)): "domain", ("url", ("value",)): "url",
          ("email-addr", ("value",)): "email", ("file", ("name",)): "file_name"}
HASHES = {"MD5": ("md5", 32), "SHA1": ("sha1", 40), "SHA256": ("sha256", 64), "SHA512": ("sha512", 128)}
STR = re.compile(r"'((?:[^'\\]|\\.)*)'", re.S)


def unescape(s):
    return s.replace("\\'", "'").replace("\\\\", "\\")


def oasis_values(p):
    """The (type, value) pairs we must reduce `p` to, from the validator's inspector, or None
    when it is not made only of OR-ed simple equalities on mapped paths."""
    data = Pattern(p).inspect()
    if data.qualifiers or data.observation_ops - {"OR"}:
        return None
    pairs = []
    for obj_type, comps in data.comparisons.items():
        for path, op, value in comps:
            if not all(isinstance(c, str) for c in path):
                return None
            key = (obj_type, tuple(path))
            if key in MAPPED:
                ty = MAPPED[key]
            elif obj_type == "file" and len(path) == 2 and path[0] == "hashes":
                name = path[1].upper().replace("-", "").replace("_", "")
                if name not in HASHES:
                    return None
                ty, n = HASHES[name]
            else:
                return None
            if op in ("=", "=="):
                if not (value.startswith("'") and value.endswith("'")):
                    return None
                vals = [unescape(value[1:-1])]
            elif op == "IN":
                inner = value[1:-1]
                vals = [unescape(m.group(1)) for m in STR.finditer(inner)]
                if not vals or STR.sub("", inner).replace(",", "") != "":
                    return None
            else:
                return None
            for v in vals:
                if ty in ("md5", "sha1", "sha256", "sha512"):
                    n = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}[ty]
                    if not (len(v) == n and all(c in "0123456789abcdefABCDEF" for c in v)):
                        return None
                pairs.append((ty, v))
    return sorted(set(pairs)) if pairs else None


def depth(p):
    d = m = 0
    for c in p:
        if c == "(":
            d += 1
            m = max(m, d)
        elif c == ")":
            d -= 1
    return m


def main():
    binary, matcher_dir = sys.argv[1:3]
    mutations = int(sys.argv[3]) if len(sys.argv) > 3 else 5000
    seeds = corpus(matcher_dir)
    rng = random.Random(20261202)
    pats = list(seeds)
    for _ in range(mutations):
        pats.append(mutate(rng, rng.choice(seeds)))
    # Our documented limits, once at and once past each.
    pats.append("[a:b = '" + "x" * (MAX_BYTES - 10) + "']")
    pats.append("[a:b = '" + "x" * MAX_BYTES + "']")
    pats.append("(" * MAX_DEPTH + "[a:b = 1]" + ")" * MAX_DEPTH)
    pats.append("(" * (MAX_DEPTH + 1) + "[a:b = 1]" + ")" * (MAX_DEPTH + 1))
    pats = list(dict.fromkeys(pats))
    feed = "".join(json.dumps(p) + "\n" for p in pats)
    res = subprocess.run([binary], input=feed, capture_output=True, text=True, check=True)
    ours = [json.loads(l) for l in res.stdout.split("\n") if l]
    assert len(ours) == len(pats), (len(ours), len(pats))
    stats = {"patterns": len(pats), "seeds": len(seeds), "valid": 0, "invalid": 0,
             "validator_failed": 0, "beyond_limits": 0, "reduced": 0}
    bad = []
    for p, mine in zip(pats, ours):
        beyond = len(p.encode()) > MAX_BYTES or depth(p) > MAX_DEPTH
        valid, crashed = oasis(p) if len(p) < 100_000 or not beyond else (None, False)
        if beyond and not mine["ok"]:
            stats["beyond_limits"] += 1
            continue
        if crashed:
            stats["validator_failed"] += 1
            if mine["ok"]:
                bad.append(("the validator fails on it, we accept it", p, mine))
            continue
        if valid != mine["ok"]:
            bad.append(("validator %s, ours %s" % (valid, mine["ok"]), p, mine))
            continue
        stats["valid" if valid else "invalid"] += 1
        if valid:
            want = oasis_values(p)
            got = sorted(set(map(tuple, mine["values"]))) if mine["values"] is not None else None
            if want != got:
                bad.append(("values differ: validator %s" % (want,), p, mine))
            elif got:
                stats["reduced"] += 1
    print("stix conformance: " + ", ".join(f"{k} {v}" for k, v in stats.items()))
    for why, p, mine in bad[:25]:
        print(f"  DISAGREE ({why}): {p!r} -> ours {mine}")
    if bad:
        sys.exit(f"stix conformance: {len(bad)} disagreements with the OASIS validator")


if __name__ == "__main__":
    main()
