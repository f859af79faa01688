#!/usr/bin/env python3
"""Static checks of the app's knowledge objects (there is no splunkd here).

- every .conf in default/ parses (stanzas, key = value, continuation lines, comments);
- every lookup used by a search (saved searches, the dashboard, the README's ```spl blocks)
  is defined in transforms.conf (or is one of Enterprise Security's local_*_intel lookups);
- every macro used exists in macros.conf with that many arguments;
- every kvstore lookup's collection exists and declares every field of its fields_list;
- the fields a search writes with outputlookup, and the fields a `lookup` reads or outputs,
  are in the lookup's fields_list;
- the event fields the searches read ('quoted' eval references, and the raw fields props.conf
  computes from) are fields the binary really prints: checked against its NDJSON output.

Usage: check_knowledge.py APP_SOURCE_DIR README.md EVENTS.ndjson
       check_knowledge.py --self-test APP_SOURCE_DIR README.md EVENTS.ndjson
"""
import copy
import json
import os
import re
import sys
import xml.etree.ElementTree as ET

ES_LOOKUPS = {"local_ip_intel", "local_domain_intel", "local_file_intel", "local_http_intel", "local_email_intel"}


def parse_conf(text, name):
    stanzas = {"default": {}}
    cur = "default"
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i].rstrip("\r")
        while line.endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line[:-1] + "\n" + lines[i].rstrip("\r")
        i += 1
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s.startswith("["):
            if not s.endswith("]"):
                raise ValueError(f"{name}: bad stanza header {s!r}")
            cur = s[1:-1]
            stanzas.setdefault(cur, {})
            continue
        if "=" not in line:
            raise ValueError(f"{name}: not key = value: {s!r}")
        k, v = line.split("=", 1)
        stanzas[cur][k.strip()] = v.strip()
    return stanzas


def load(app):
    confs = {}
    for f in sorted(os.listdir(os.path.join(app, "default"))):
        if f.endswith(".conf"):
            confs[f[:-5]] = parse_conf(open(os.path.join(app, "default", f), encoding="utf-8").read(), f)
    views = {}
    vdir = os.path.join(app, "default", "data", "ui", "views")
    for f in sorted(os.listdir(vdir)) if os.path.isdir(vdir) else []:
        root = ET.parse(os.path.join(vdir, f)).getroot()
        views[f] = [q.text or "" for q in root.iter("query")]
    return confs, views


def readme_spl(readme):
    return re.findall(r"```spl\n(.*?)```", open(readme, encoding="utf-8").read(), re.S)


def event_fields(ndjson):
    names = set()

    def walk(v, prefix):
        if isinstance(v, dict):
            for k, x in v.items():
                walk(x, f"{prefix}.{k}" if prefix else k)
        elif isinstance(v, list):
            names.add(prefix + "{}")
            for x in v:
                walk(x, prefix + "{}")
        else:
            names.add(prefix)

    for line in open(ndjson, encoding="utf-8"):
        if line.strip():
            walk(json.loads(line), "")
    return names


def macro_refs(text):
    out = []
    for m in re.finditer(r"`([A-Za-z0-9_]+)(\(([^`]*)\))?`", text):
        nargs = len(m.group(3).split(",")) if m.group(2) else 0
        out.append((m.group(1), nargs))
    return out


def commands(text):
    """Pipeline segments, subsearches flattened."""
    flat = text.replace("[", "|").replace("]", "|").replace("\\\n", " ").replace("\n", " ")
    return [seg.strip() for seg in flat.split("|") if seg.strip()]


def check(confs, views, spl_blocks, fields):
    errors = []
    transforms = confs.get("transforms", {})
    collections = confs.get("collections", {})
    macros = confs.get("macros", {})
    lookups = {k: v for k, v in transforms.items() if k != "default"}

    def flist(name):
        return [f.strip() for f in lookups[name].get("fields_list", "").split(",") if f.strip()]

    for name, st in lookups.items():
        if st.get("external_type") == "kvstore":
            col = st.get("collection")
            if col not in collections:
                errors.append(f"transforms [{name}]: collection {col!r} not in collections.conf")
                continue
            declared = {k[6:] for k in collections[col] if k.startswith("field.")}
            for f in flist(name):
                if f != "_key" and f not in declared:
                    errors.append(f"transforms [{name}]: field {f!r} not declared in collections [{col}]")

    searches = []
    for name, st in confs.get("savedsearches", {}).items():
        if "search" in st:
            searches.append((f"savedsearches [{name}]", st["search"]))
    for name, st in macros.items():
        if "definition" in st:
            searches.append((f"macros [{name}]", st["definition"]))
    for view, qs in views.items():
        searches += [(f"view {view}", q) for q in qs]
    searches += [(f"README spl block {i + 1}", b) for i, b in enumerate(spl_blocks)]

    macro_names = {}
    for k in macros:
        m = re.match(r"([A-Za-z0-9_]+)(\((\d+)\))?$", k)
        if m:
            macro_names[(m.group(1), int(m.group(3) or 0))] = k

    for where, text in searches:
        for name, n in macro_refs(text):
            if (name, n) not in macro_names:
                errors.append(f"{where}: macro `{name}` with {n} arguments is not in macros.conf")
        segs = commands(text)
        for i, seg in enumerate(segs):
            words = seg.split()
            cmd = words[0]
            if cmd in ("lookup", "inputlookup", "outputlookup"):
                args = [w for w in words[1:] if "=" not in w]
                if not args:
                    errors.append(f"{where}: {cmd} without a lookup name")
                    continue
                name = args[0].rstrip(",")
                if name in ES_LOOKUPS:
                    continue
                if name not in lookups:
                    errors.append(f"{where}: lookup {name!r} is not defined in transforms.conf")
                    continue
                fl = set(flist(name))
                if cmd == "lookup":
                    m = re.match(r"lookup\s+\S+\s*(.*?)(?:\s+(?:OUTPUT|OUTPUTNEW)\s+(.*))?$", seg)
                    inp, out = m.group(1), m.group(2) or ""
                    match_field = inp.split()[0] if inp.split() else None
                    if match_field and match_field not in fl:
                        errors.append(f"{where}: lookup {name} matches on {match_field!r}, not in its fields_list")
                    for f in re.split(r"[,\s]+", out.strip()):
                        f = f.strip()
                        if f and f.upper() != "AS" and f not in fl:
                            errors.append(f"{where}: lookup {name} outputs {f!r}, not in its fields_list")
                if cmd == "outputlookup":
                    tables = [s for s in segs[:i] if s.split()[0] == "table"]
                    # Reading a lookup and writing it back keeps exactly its own columns.
                    round_trip = segs[0].split()[:2] == ["inputlookup", name]
                    if not tables and round_trip:
                        continue
                    if not tables:
                        errors.append(f"{where}: outputlookup {name} without a table command naming its columns")
                    else:
                        for f in re.split(r"[,\s]+", tables[-1][len("table"):].strip()):
                            if f and f not in fl:
                                errors.append(f"{where}: writes {f!r} to {name}, not in its fields_list")
        if 'sourcetype="socdefenders:ioc"' in text or "socdefenders_intel_fields" in where:
            for ref in re.findall(r"'([A-Za-z0-9_.{}]+)'", text):
                if ref not in fields:
                    errors.append(f"{where}: reads event field {ref!r}, which the binary does not print")

    for st_name, st in confs.get("props", {}).items():
        if st_name != "socdefenders:ioc":
            continue
        for k, v in st.items():
            if k.startswith("EVAL-"):
                for ref in re.findall(r"\b(type|value|confidence|id)\b", v):
                    if ref not in fields:
                        errors.append(f"props [{st_name}] {k}: uses {ref!r}, not printed by the binary")
            if k.startswith("FIELDALIAS-"):
                src = v.split()[0]
                if src not in fields:
                    errors.append(f"props [{st_name}] {k}: aliases {src!r}, not printed by the binary")
    return errors


def self_test(confs, views, spl, fields):
    """Each broken variant must be caught; otherwise the checker checks nothing."""
    cases = []
    c = copy.deepcopy(confs)
    del c["macros"]["socdefenders_index"]
    cases.append(("a missing macro", c, views, spl, fields))
    c = copy.deepcopy(confs)
    st = c["transforms"]["socdefenders_threat_intel_by_ip"]
    st["fields_list"] = st["fields_list"].replace(", threat_collection", "")
    cases.append(("a fields_list without a written field", c, views, spl, fields))
    c = copy.deepcopy(confs)
    del c["transforms"]["socdefenders_threat_intel_by_domain"]
    cases.append(("a missing lookup", c, views, spl, fields))
    c = copy.deepcopy(confs)
    del c["collections"]["socdefenders_threat_intel_by_url"]["field.tags"]
    cases.append(("an undeclared collection field", c, views, spl, fields))
    cases.append(("an event field the binary does not print", confs, views, spl, fields - {"source.feed_name"}))
    cases.append(("a README search reading an unknown output", confs, views, spl + ["| lookup socdefenders_threat_intel_by_ip ip OUTPUT nosuchfield"], fields))
    failed = False
    for label, c, v, s, f in cases:
        if not check(c, v, s, f):
            print(f"self-test: {label} was NOT caught")
            failed = True
    if failed:
        sys.exit(1)
    print(f"knowledge self-test ok: {len(cases)} broken variants caught")


def main():
    args = sys.argv[1:]
    selftest = args and args[0] == "--self-test"
    if selftest:
        args = args[1:]
    app, readme, ndjson = args
    confs, views = load(app)
    spl = readme_spl(readme)
    fields = event_fields(ndjson)
    if not spl:
        sys.exit("README has no ```spl blocks")
    if selftest:
        self_test(confs, views, spl, fields)
    errors = check(confs, views, spl, fields)
    if errors:
        print("knowledge check FAILED:\n  " + "\n  ".join(errors))
        sys.exit(1)
    n = len(confs.get("savedsearches", {})) - 1
    print(f"knowledge check ok: {len(confs)} .conf files, {n} saved searches, {sum(len(q) for q in views.values())} dashboard searches, {len(spl)} README searches, {len(fields)} event fields")


if __name__ == "__main__":
    main()
