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
  computes from) are fields the binary really prints: checked against its NDJSON output (of
  both sources);
- case: a KV store lookup with case_sensitive_match = false matches only rows in lower case
  (transforms.conf.spec), so its writer must store the match field through lower(): the
  writer's expression is evaluated on CVE-2026-12345, Evil.Example, an upper-case hash and a
  mixed-case address, and README or dashboard literals for that field must be lower case;
- maintenance: a collection that some search replaces (outputlookup without append) has no
  other writer; every replace of a KV store lookup is guarded (override_if_empty=false and a
  comparison with `socdefenders_kv_max_rows`, the KV read cap); writers use no subsearch
  (subsearches are cut at 10,000 or 50,000 results, silently); a prune on last_seen keeps rows
  whose last_seen does not parse; searches that build lookups from socdefenders:ioc events
  select by index time (_index_earliest) over at least 3 schedule intervals;
- the Enterprise Security feeds keep other rows whole: no `table` after reading ES's lookup, and
  a `like(description ...)` test must not drop rows without a description;
- metadata/default.meta exports only props, transforms, collections, macros and lookups.

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
    """The app's .conf files, its views' queries, and metadata/default.meta (as confs["meta"])."""
    confs = {}
    for f in sorted(os.listdir(os.path.join(app, "default"))):
        if f.endswith(".conf"):
            confs[f[:-5]] = parse_conf(open(os.path.join(app, "default", f), encoding="utf-8").read(), f)
    meta = os.path.join(app, "app", "metadata", "default.meta")
    if os.path.exists(meta):
        confs["meta"] = parse_conf(open(meta, encoding="utf-8").read(), "default.meta")
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


def expand(text, macros, depth=0):
    """`text` with its macro calls replaced by their definitions ($arg$ substituted)."""
    def repl(m):
        args = [a.strip() for a in m.group(3).split(",")] if m.group(2) else []
        st = macros.get(f"{m.group(1)}({len(args)})" if args else m.group(1))
        if st is None or "definition" not in st:
            return m.group(0)
        d = st["definition"]
        for name, value in zip([a.strip() for a in st.get("args", "").split(",")], args):
            d = d.replace(f"${name}$", value)
        return expand(d, macros, depth + 1) if depth < 10 else d
    return re.sub(r"`([A-Za-z0-9_]+)(\(([^`]*)\))?`", repl, text)


CASE_SAMPLES = ["CVE-2026-12345", "Evil.Example", "AEC070645FE53EE3B3763059376134F058CC337247C978ADD178B6CCDFB0019F",
                "Sender@Example.COM", "2001:DB8::BAD:1"]


def evaluate(expr, value):
    """A tiny evaluator for the expressions a writer assigns to a match field: 'value',
    lower(...), upper(...), trim(...). None when it cannot tell."""
    expr = expr.strip()
    if re.fullmatch(r"'?[A-Za-z_][A-Za-z0-9_.]*'?", expr):
        return value  # a field: the value as the event or the stored row has it
    m = re.match(r"(lower|upper|trim)\((.*)\)$", expr)
    if not m:
        return None
    inner = evaluate(m.group(2), value)
    if inner is None:
        return None
    return {"lower": inner.lower(), "upper": inner.upper(), "trim": inner.strip()}[m.group(1)]


def cron_interval_minutes(cron):
    minute = cron.split()[0]
    m = re.match(r"(?:\*|\d+-\d+)/(\d+)$", minute)
    return int(m.group(1)) if m else 60


def duration_minutes(text):
    m = re.match(r"-?(\d+)([smhd])", text)
    if not m:
        return 0
    return int(m.group(1)) * {"s": 1 / 60, "m": 1, "h": 60, "d": 1440}[m.group(2)]


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

    for where, raw in searches:
        for name, n in macro_refs(raw):
            if (name, n) not in macro_names:
                errors.append(f"{where}: macro `{name}` with {n} arguments is not in macros.conf")
        if where.startswith("macros [") and "$" in raw:
            continue  # checked where it is called, with its arguments
        text = expand(raw, macros)
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

    errors += check_hunting(confs, views, spl_blocks, lookups, flist)

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


def writes(text):
    """(lookup, replaces) for each outputlookup of an expanded search."""
    out = []
    for seg in commands(text):
        words = seg.split()
        if words[0] == "outputlookup":
            names = [w for w in words[1:] if "=" not in w]
            if names:
                out.append((names[0], "append=true" not in words[1:]))
    return out


def check_hunting(confs, views, spl_blocks, lookups, flist):
    """The checks of case, maintenance, freshness, ES feeds and exports (see the top)."""
    errors = []
    macros = confs.get("macros", {})
    saved = {n: st for n, st in confs.get("savedsearches", {}).items() if "search" in st}
    expanded = {n: expand(st["search"], macros) for n, st in saved.items()}
    kv = {n for n, st in lookups.items() if st.get("external_type") == "kvstore"}

    # Case: lower-case rows where the match is case-insensitive.
    for name in kv:
        if lookups[name].get("case_sensitive_match", "true").lower() != "false":
            continue
        match = [f for f in flist(name) if f != "_key"][0]
        for sname, text in expanded.items():
            if not any(l == name for l, _ in writes(text)):
                continue
            assigned = re.findall(rf"[\s,]{re.escape(match)}=((?:lower|upper|trim)\([^()]*\)|'[^']*')", text)
            if not assigned:
                errors.append(f"savedsearches [{sname}]: writes {name} without assigning {match} (it must be lower case)")
            merged = text.find(f"inputlookup append=true {name}")
            if merged >= 0 and not re.search(rf"[\s,]{re.escape(match)}=lower\(", text[merged:]):
                errors.append(f"savedsearches [{sname}]: writes back the stored rows of {name} without lowering {match}: "
                              f"rows stored in mixed case (by earlier releases) never match")
            for expr in assigned:
                for sample in CASE_SAMPLES:
                    got = evaluate(expr, sample)
                    if got != sample.lower():
                        errors.append(f"savedsearches [{sname}]: stores {match}={expr}, so {sample!r} is stored as {got!r}: "
                                      f"{name} is case_sensitive_match = false, which KV store honours only for lower-case rows")
                        break
        for where, text in [(f"README spl block {i + 1}", b) for i, b in enumerate(spl_blocks)] + \
                [(f"view {v}", q) for v, qs in views.items() for q in qs]:
            if name in text:
                for lit in re.findall(rf"\b{re.escape(match)}\s*=\s*\"([^\"]*)\"", text):
                    if lit != lit.lower():
                        errors.append(f"{where}: compares {match} with {lit!r}; {name} stores it in lower case")

    # Maintenance: one writer per replaced collection, guarded replaces, no subsearch caps.
    writers = {}
    for sname, text in expanded.items():
        for lookup, replaces in writes(text):
            writers.setdefault(lookup, []).append((sname, replaces))
    for lookup, ws in writers.items():
        if any(r for _, r in ws) and len({s for s, _ in ws}) > 1:
            errors.append(f"{lookup}: replaced by one search and written by another ({', '.join(sorted({s for s, _ in ws}))}): "
                          f"a write between one's read and its rewrite is lost")
    for sname, text in expanded.items():
        ws = writes(text)
        if not ws:
            continue
        for lookup, replaces in ws:
            if replaces and (lookup in kv or lookup in ES_LOOKUPS):
                # The guard macro left unexpanded: is the cap compared with at all?
                guarded = expand(saved[sname]["search"],
                                 {k: v for k, v in macros.items() if k != "socdefenders_kv_max_rows"})
                if "override_if_empty=false" not in text or not re.search(
                        r"(<|>=)\s*`socdefenders_kv_max_rows`", guarded):
                    errors.append(f"savedsearches [{sname}]: replaces {lookup} without the KV read-cap guard "
                                  f"(override_if_empty=false and a comparison with `socdefenders_kv_max_rows`): "
                                  f"rows past limits.conf [kvstore] max_rows_per_query would be deleted")
        if re.search(r"\[\s*(search\b|\|)", text):
            errors.append(f"savedsearches [{sname}]: writes a lookup from a subsearch, whose results are cut "
                          f"at 10,000/50,000 rows or 60 s without an error")
        for var in re.findall(r"(\w+)=strptime\(last_seen", text):
            # kept: `case(..., isnull(var), 1, ...)` or `where isnull(var) OR ...`
            if not re.search(rf"isnull\({var}\)\s*(,\s*1\b|OR\b)", text):
                errors.append(f"savedsearches [{sname}]: prunes on {var} without keeping rows where it is null")
        if re.search(r"where\s+strptime\(last_seen", text):
            errors.append(f"savedsearches [{sname}]: filters on strptime(last_seen) directly, dropping rows whose last_seen does not parse")
        if 'sourcetype="socdefenders:ioc"' in text and any(l in kv for l, _ in ws):
            m = re.search(r"_index_earliest=(-\S+)", text)
            every = cron_interval_minutes(saved[sname].get("cron_schedule", "0 * * * *"))
            if not m:
                errors.append(f"savedsearches [{sname}]: selects events by _time, not index time (_index_earliest): "
                              f"late forwarding or a skipped run leaves indicators out of the lookup")
            elif duration_minutes(m.group(1)) < 3 * every:
                errors.append(f"savedsearches [{sname}]: _index_earliest={m.group(1)} covers less than 3 runs of {every} minutes")
        # Enterprise Security feeds: keep every other row whole.
        if any(l in ES_LOOKUPS for l, _ in ws):
            segs = commands(text)
            if any(seg.split()[0] == "table" for seg in segs):
                errors.append(f"savedsearches [{sname}]: `table` drops the columns of rows it does not own")
            for m in re.finditer(r"like\(description", text):
                before = text[max(0, m.start() - 60):m.start()]
                if "isnotnull(description)" not in before:
                    errors.append(f"savedsearches [{sname}]: like(description, ...) is null for rows without a description, which are then dropped")

    # Exports.
    meta = confs.get("meta", {})
    allowed = {"props", "transforms", "collections", "macros", "lookups"}
    if meta.get("", {}).get("export", "none") != "none" or meta.get("default", {}).get("export", "none") != "none":
        errors.append("default.meta: [] exports everything (views and saved searches included); export only what other apps need")
    for stanza, st in meta.items():
        if stanza in ("", "default"):
            continue
        if st.get("export") == "system" and stanza.split("/")[0] not in allowed:
            errors.append(f"default.meta: [{stanza}] is exported; only {', '.join(sorted(allowed))} should be")
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
    ss = "savedsearches"
    maint = lambda n: f"SOC Defenders - Maintain {n} lookup"
    esip = "SOC Defenders - Feed Enterprise Security local_ip_intel"

    def mutate(label, conf, stanza, key, old, new):
        c = copy.deepcopy(confs)
        text = c[conf][stanza][key]
        assert old in text, (label, old)
        c[conf][stanza][key] = text.replace(old, new)
        cases.append((label, c, views, spl, fields))

    mutate("a case-insensitive lookup written as received", ss, maint("domain"), "search",
           "domain=lower('value')", "domain='value'")
    mutate("stored rows written back without lowering", ss, maint("cve"), "search",
           ", cve=lower(cve)", "")
    c = copy.deepcopy(confs)
    c[ss]["A second writer"] = {"search": '`socdefenders_index` sourcetype="socdefenders:ioc" _index_earliest=-4h '
                                          "| eval _key='id', domain=lower('value') | table _key domain "
                                          "| outputlookup append=true key_field=_key socdefenders_threat_intel_by_domain",
                                "cron_schedule": "*/15 * * * *"}
    cases.append(("a second writer of a rewritten collection", c, views, spl, fields))
    mutate("a replace without override_if_empty=false", ss, maint("ip"), "search",
           "outputlookup override_if_empty=false", "outputlookup")
    mutate("a writer with a subsearch", ss, maint("ip"), "search",
           "| outputlookup override_if_empty=false", "| search NOT [search index=x | fields id] | outputlookup override_if_empty=false")
    mutate("a prune that drops unparseable last_seen", "macros", "socdefenders_lookup_merge_prune(2)", "definition",
           "isnull(socdefenders_last), 1, ", "")
    mutate("a writer that selects by _time", ss, maint("domain"), "search",
           "_index_earliest=-`socdefenders_lookup_overlap` ", "")
    mutate("an index-time overlap shorter than 3 runs", "macros", "socdefenders_lookup_overlap", "definition", "4h", "20m")
    mutate("an ES feed that tables its output", ss, esip, "search",
           "| outputlookup override_if_empty=false local_ip_intel",
           "| table ip description weight threat_key | outputlookup override_if_empty=false local_ip_intel")
    mutate("an ES feed that drops rows without a description", ss, esip, "search",
           "isnotnull(description) AND like(", "like(")
    mutate("an app that exports everything", "meta", "", "export", "none", "system")
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
