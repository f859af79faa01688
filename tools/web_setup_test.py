#!/usr/bin/env python3
"""The setup page in a real browser: headless Chromium (Debian's, driven by Playwright) loads the
packaged app's own files the way Splunk Web serves them (the view's <html> panel, its script and
stylesheet from appserver/static) from a loopback stand-in for Splunk Web and splunkd, which
records every REST call, enforces Splunk Web's CSRF form key on every POST, honours the `f=`
field filter, and answers faults on demand. Each scenario fills the form, saves, and checks the
exact calls and what the page shows.

Usage: web_setup_test.py STAGED_APP_DIR [SCREENSHOT.png]
"""
import http.server
import json
import os
import re
import secrets
import sys
import threading
import urllib.parse
import xml.etree.ElementTree as ET

from playwright.sync_api import sync_playwright

APP_DIR = os.path.abspath(sys.argv[1])
SHOT = sys.argv[2] if len(sys.argv) > 2 else None
APP = "TA-socdefenders"
NS = f"/en-US/splunkd/__raw/servicesNS/nobody/{APP}"
KEY = "sk_test_SETUPPAGE_not_real"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def conf(path):
    """A .conf file as {stanza: {key: value}} (enough for the app's own files)."""
    out, cur = {}, "default"
    for line in open(path, encoding="utf-8"):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s.startswith("["):
            cur = s[1:-1]
            out.setdefault(cur, {})
        elif "=" in s:
            k, v = s.split("=", 1)
            out.setdefault(cur, {})[k.strip()] = v.strip()
    return out


def page_html():
    """What Splunk Web renders for the view: its <html> panel, its stylesheet and its script."""
    root = ET.parse(os.path.join(APP_DIR, "default/data/ui/views/socdefenders_setup.xml")).getroot()
    assert root.get("version") == "1.1", "the setup view must be a Simple XML 1.1 dashboard"
    panel = root.find(".//html")
    inner = "".join(ET.tostring(c, encoding="unicode", method="html") for c in panel)
    static = f"/en-US/static/app/{APP}"
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>Setup</title>'
            f'<link rel="stylesheet" href="{static}/{root.get("stylesheet")}"></head>'
            f'<body><div class="dashboard-body">{inner}</div>'
            f'<script src="{static}/{root.get("script")}"></script></body></html>')


class Splunk:
    """State of the stand-in: the secret, socdefenders.conf, the inputs, and every call."""

    def __init__(self, key_stored=False):
        self.form_key = secrets.token_hex(10)
        self.calls = []
        self.faults = []  # (method, path regex, status, message), each used once
        self.password = {"password": "sk_live_OLD", "updated": "2026-11-30T10:00:00+00:00"} if key_stored else None
        shipped = conf(os.path.join(APP_DIR, "default/socdefenders.conf"))
        self.conf = {"default": dict(shipped.get("default", {}))}
        self.conf["input:taxii"] = {**shipped.get("default", {}), **shipped.get("input:taxii", {})}
        self.inputs = {}
        for stanza, st in conf(os.path.join(APP_DIR, "default/inputs.conf")).items():
            if stanza.startswith("script://"):
                self.inputs[stanza[len("script://"):]] = {"disabled": st.get("disabled") == "1",
                                                          "interval": st.get("interval"), "index": "default"}
        self.runs = [{"input": "default", "last_success": "1795000000",
                      "last_error": "HTTP 401 from https://socdefenders.ai: the API key was refused; store a valid key"}]

    def posts(self):
        return [c for c in self.calls if c[0] == "POST"]


def reply(h, status, body):
    data = json.dumps(body).encode()
    h.send_response(status)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)


def error(h, status, text):
    reply(h, status, {"messages": [{"type": "ERROR", "text": text}]})


def make_handler(state):
    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            self.route("GET", {})

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in urllib.parse.parse_qs(self.rfile.read(n).decode(), keep_blank_values=True).items()}
            self.route("POST", form)

        def route(self, method, form):
            u = urllib.parse.urlsplit(self.path)
            path, query = urllib.parse.unquote(u.path), urllib.parse.parse_qs(u.query)
            if path == f"/en-US/app/{APP}/socdefenders_setup":
                data = page_html().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                port = self.server.server_address[1]
                self.send_header("Set-Cookie", f"splunkweb_csrf_token_{port}={state.form_key}; Path=/")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            if path.startswith(f"/en-US/static/app/{APP}/"):
                f = os.path.join(APP_DIR, "appserver/static", path.rsplit("/", 1)[1])
                data = open(f, "rb").read()
                self.send_response(200)
                self.send_header("Content-Type", "text/css" if f.endswith(".css") else "application/javascript")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            if not path.startswith("/en-US/splunkd/__raw/"):
                return error(self, 404, "not found")
            state.calls.append((method, path, form if method == "POST" else {k: v for k, v in query.items()}))
            if method == "POST":
                if self.headers.get("X-Splunk-Form-Key") != state.form_key:
                    return error(self, 401, "Splunk cannot authenticate the request. CSRF validation failed.")
                if form.get("output_mode") != "json":
                    return error(self, 400, "output_mode=json expected")
            for i, (m, rx, status, text) in enumerate(state.faults):
                if m == method and re.search(rx, path):
                    del state.faults[i]
                    return error(self, status, text)
            self.splunkd(method, path, query, form)

        def splunkd(self, method, path, query, form):
            pw = f"{NS}/storage/passwords/{APP}:"
            if path.startswith(pw):
                cred = path[len(pw):].rstrip(":")
                if method == "GET":
                    if state.password is None:
                        return error(self, 404, f"Could not find object id={APP}:{cred}:")
                    content = {"realm": APP, "username": cred, "updated": state.password["updated"],
                               "clear_password": state.password["password"], "password": "********"}
                    wanted = query.get("f")
                    if wanted:
                        content = {k: v for k, v in content.items() if k in wanted}
                    return reply(self, 200, {"entry": [{"name": f"{APP}:{cred}:", "updated": state.password["updated"],
                                                        "content": content}]})
                if state.password is None:
                    return error(self, 404, "not found")
                state.password = {"password": form["password"], "updated": "2026-12-02T12:00:00+00:00"}
                return reply(self, 200, {"entry": []})
            if path == f"{NS}/storage/passwords" and method == "POST":
                if state.password is not None:
                    return error(self, 409, "An object with name=api_key already exists")
                state.password = {"password": form["password"], "updated": "2026-12-02T12:00:00+00:00"}
                return reply(self, 201, {"entry": []})
            if path.startswith(f"{NS}/configs/conf-socdefenders/"):
                stanza = path.rsplit("/", 1)[1]
                if stanza not in state.conf:
                    return error(self, 404, "no such stanza")
                if method == "POST":
                    state.conf[stanza].update({k: v for k, v in form.items() if k != "output_mode"})
                return reply(self, 200, {"entry": [{"name": stanza, "content": state.conf[stanza]}]})
            if path == f"{NS}/configs/conf-app/install" and method == "POST":
                return reply(self, 200, {"entry": []})
            if path == f"{NS}/data/inputs/script" and method == "GET":
                return reply(self, 200, {"entry": [{"name": n, "content": c} for n, c in state.inputs.items()]})
            if path.startswith(f"{NS}/data/inputs/script/") and method == "POST":
                rest = path[len(f"{NS}/data/inputs/script/"):]
                for action in ("/enable", "/disable"):
                    if rest.endswith(action) and rest[:-len(action)] in state.inputs:
                        state.inputs[rest[:-len(action)]]["disabled"] = action == "/disable"
                        return reply(self, 200, {"entry": []})
                if rest in state.inputs:
                    state.inputs[rest].update({k: v for k, v in form.items() if k in ("interval", "index")})
                    return reply(self, 200, {"entry": []})
                return error(self, 404, "no such input")
            if path == "/en-US/splunkd/__raw/services/search/jobs" and method == "POST":
                assert form["exec_mode"] == "oneshot" and "`socdefenders_input_runs`" in form["search"], form
                return reply(self, 200, {"results": state.runs})
            return error(self, 404, f"stand-in: no route for {method} {path}")
    return H


class Session:
    def __init__(self, browser, state):
        self.state = state
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.page = browser.new_page(viewport={"width": 1280, "height": 1500})
        self.errors = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(f"http://127.0.0.1:{self.server.server_address[1]}/en-US/app/{APP}/socdefenders_setup")
        self.page.wait_for_selector("body[data-sd-ready='1']", timeout=10000)

    def banner(self):
        return self.page.inner_text("#sd-banner")

    def settle(self):
        self.page.wait_for_load_state("networkidle")

    def close(self):
        assert not self.errors, f"JavaScript errors: {self.errors}"
        self.page.close()
        self.server.shutdown()


def paths(calls):
    return [(m, p.replace(NS, "NS")) for m, p, _ in calls]


def first_setup(browser):
    s = Session(browser, Splunk(key_stored=False))
    assert s.page.inner_text("#sd-key-status") == "not stored yet"
    get = s.state.calls[[p for _, p, _ in s.state.calls].index(f"{NS}/storage/passwords/{APP}:api_key:")]
    assert sorted(get[2]["f"]) == ["realm", "updated", "username"], get  # never clear_password
    s.state.calls.clear()
    s.page.fill("#sd-key", KEY)
    s.page.click("#sd-save-key")
    s.page.wait_for_function("document.getElementById('sd-key-status').textContent.startsWith('stored')")
    s.settle()
    assert paths(s.state.calls) == [
        ("GET", f"NS/storage/passwords/{APP}:api_key:"),
        ("POST", "NS/storage/passwords"),
        ("POST", "NS/configs/conf-app/install"),
        ("GET", f"NS/storage/passwords/{APP}:api_key:"),
    ], paths(s.state.calls)
    assert s.state.calls[1][2] == {"name": "api_key", "password": KEY, "realm": APP, "output_mode": "json"}
    assert s.state.calls[2][2]["is_configured"] == "1"
    assert s.state.password["password"] == KEY
    assert "stored in Splunk's secret store" in s.banner(), s.banner()
    assert KEY not in s.page.content() and s.page.input_value("#sd-key") == "", "the key stays in the page"
    if SHOT:
        s.page.screenshot(path=SHOT, full_page=True)
    s.close()


def update_and_conflict(browser):
    s = Session(browser, Splunk(key_stored=True))
    assert s.page.inner_text("#sd-key-status").startswith("stored, changed 2026-11-30")
    s.state.calls.clear()
    s.page.fill("#sd-key", KEY)
    s.page.click("#sd-save-key")
    s.page.wait_for_function("document.getElementById('sd-banner').textContent.length > 0")
    s.settle()
    assert paths(s.state.calls)[:2] == [("GET", f"NS/storage/passwords/{APP}:api_key:"),
                                         ("POST", f"NS/storage/passwords/{APP}:api_key:")], paths(s.state.calls)
    assert s.state.calls[1][2] == {"password": KEY, "output_mode": "json"}
    s.close()
    # Created by someone else between the check and the create: 409, then an update.
    st = Splunk(key_stored=False)
    s = Session(browser, st)
    st.calls.clear()
    st.password = {"password": "sk_live_RACE", "updated": "x"}
    st.faults.append(("GET", r"storage/passwords/", 404, "Could not find object"))
    s.page.fill("#sd-key", KEY)
    s.page.click("#sd-save-key")
    s.page.wait_for_function("document.getElementById('sd-banner').textContent.length > 0")
    s.settle()
    assert [c for c in paths(st.calls) if c[0] == "POST"][:2] == [
        ("POST", "NS/storage/passwords"), ("POST", f"NS/storage/passwords/{APP}:api_key:")], paths(st.calls)
    assert st.password["password"] == KEY and "stored" in s.banner(), s.banner()
    s.close()


def failures(browser):
    cases = [
        (403, "Permission denied", "your role cannot store secrets", "edit_storage_passwords"),
        (401, "call not properly authenticated", "session has expired", "sign in again"),
        (500, "KV Store is initializing", "Splunk answered HTTP 500: KV Store is initializing", "Storing the key failed"),
    ]
    for status, text, want1, want2 in cases:
        st = Splunk(key_stored=False)
        s = Session(browser, st)
        st.calls.clear()
        st.faults.append(("POST", r"/storage/passwords$", status, text))
        s.page.fill("#sd-key", KEY)
        s.page.click("#sd-save-key")
        s.page.wait_for_function("document.getElementById('sd-banner').textContent.length > 0")
        s.settle()
        b = s.banner()
        assert want1 in b and want2 in b and "\n" not in b.strip(), (status, b)
        assert "sd-error" in s.page.get_attribute("#sd-banner", "class")
        assert st.password is None and not any("conf-app" in p for _, p, _ in st.calls), st.calls
        assert KEY not in s.page.content() or s.page.input_value("#sd-key") == KEY
        s.close()
    # A POST without Splunk Web's form key is refused by the stand-in, and the page says so.
    st = Splunk(key_stored=False)
    s = Session(browser, st)
    s.page.context.clear_cookies()
    st.calls.clear()
    s.page.fill("#sd-key", KEY)
    s.page.click("#sd-save-key")
    s.page.wait_for_function("document.getElementById('sd-banner').textContent.length > 0")
    assert "form key is missing" in s.banner(), s.banner()
    assert not st.posts(), st.calls
    s.close()


def settings(browser):
    st = Splunk()
    s = Session(browser, st)
    assert s.page.input_value("#sd-taxii_url") == "https://www.socdefenders.ai/api/taxii2/"
    st.calls.clear()
    for field, value in [("#sd-limit", "0"), ("#sd-base_url", "ftp://socdefenders.ai"), ("#sd-type", "ipv4, ipv5"),
                         ("#sd-category", "threat intel")]:
        s.page.fill(field, value)
    s.page.click("#sd-save-settings")
    s.settle()
    assert not st.posts(), st.calls
    errors = {k: s.page.inner_text(f"[data-error-for='sd-{k}']") for k in ("limit", "base_url", "type", "category")}
    assert errors == {"limit": "limit must be a whole number from 1 to 10000",
                      "base_url": "base_url must be an http:// or https:// URL",
                      "type": 'type has unknown type "ipv5"; valid: ipv4, ipv6, domain, url, md5, sha1, sha256, sha512, email, cve, mitre_attack',
                      "category": "category must be a slug such as threat-intel"}, errors
    assert "Nothing was saved" in s.banner()
    s.page.fill("#sd-limit", "1000")
    s.page.fill("#sd-base_url", "")
    s.page.fill("#sd-type", "ipv4, domain")
    s.page.fill("#sd-category", "threat-intel")
    s.page.select_option("#sd-tier", "pro")
    s.page.fill("#sd-collection", "IPs only")
    s.page.click("#sd-save-settings")
    s.page.wait_for_function("document.getElementById('sd-banner').textContent.startsWith('Saved')")
    s.settle()
    posts = [(p.replace(NS, "NS"), f) for m, p, f in st.calls if m == "POST"]
    assert posts == [
        ("NS/configs/conf-socdefenders/default", {"tier": "pro", "type": "ipv4, domain", "category": "threat-intel",
                                                  "limit": "1000", "base_url": "", "output_mode": "json"}),
        ("NS/configs/conf-socdefenders/input:taxii", {"collection": "IPs only", "output_mode": "json"}),
    ], posts
    s.close()


def inputs(browser):
    st = Splunk()
    s = Session(browser, st)
    row = "tr[data-input='$SPLUNK_HOME/etc/apps/TA-socdefenders/bin/socdefenders-iocs --input ipv4']"
    default_row = "tr[data-input='$SPLUNK_HOME/etc/apps/TA-socdefenders/bin/socdefenders-iocs']"
    text = s.page.inner_text(default_row)
    assert "2026-11-18T" in text and "the API key was refused" in text, text  # last run, last error
    assert s.page.locator("#sd-inputs tr").count() == 10
    st.calls.clear()
    s.page.click(f"{row} .sd-toggle")
    s.page.wait_for_function("document.getElementById('sd-banner').textContent.startsWith('Enabled')")
    s.settle()
    name = "$SPLUNK_HOME/etc/apps/TA-socdefenders/bin/socdefenders-iocs --input ipv4"
    assert [(m, p) for m, p, _ in st.calls if m == "POST"] == [("POST", f"{NS}/data/inputs/script/{name}/enable")]
    assert st.inputs[name]["disabled"] is False and s.page.inner_text(f"{row} td:nth-child(2)") == "enabled"
    st.calls.clear()
    s.page.fill(f"{row} .sd-interval", "5")
    s.page.click(f"{row} .sd-save-input")
    s.settle()
    assert not st.posts() and "interval must be" in s.page.inner_text(f"{row} .sd-input-error")
    s.page.fill(f"{row} .sd-interval", "3600")
    s.page.fill(f"{row} .sd-index", "threat_intel")
    s.page.click(f"{row} .sd-save-input")
    s.page.wait_for_function("document.getElementById('sd-banner').textContent.startsWith('Saved')")
    s.settle()
    assert [f for m, _, f in st.calls if m == "POST"] == [{"interval": "3600", "index": "threat_intel", "output_mode": "json"}]
    st.faults.append(("POST", r"/disable$", 403, "Permission denied"))
    s.page.click(f"{row} .sd-toggle")
    s.page.wait_for_function("document.getElementById('sd-banner').textContent.startsWith('Disabling')")
    assert "cannot change data inputs" in s.banner(), s.banner()
    s.close()


def main():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        for scenario in (first_setup, update_and_conflict, failures, settings, inputs):
            scenario(browser)
            print(f"setup page: {scenario.__name__} ok")
        browser.close()
    print("setup page: all scenarios passed in headless Chromium")


if __name__ == "__main__":
    main()
