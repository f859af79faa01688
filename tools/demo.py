#!/usr/bin/env python3
"""`make demo`: serves samples/iocs-page.json as GET /api/v1/iocs on loopback, runs the built
binary once against it (--dry-run, a throw-away state dir, a fake key), and prints the events
it would index, one JSON object per line, followed by its stderr log lines.

With --taxii it serves samples/taxii-bundle.json as a one-collection TAXII 2.1 server in SOC
Defenders' style instead, and runs the binary with --source taxii (make knowledge-check uses
both, so the searches are checked against the fields of both sources).

Usage: demo.py [--taxii] BINARY"""
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
taxii = sys.argv[1] == "--taxii"
binary = sys.argv[-1]
page = open(os.path.join(root, "samples", "iocs-page.json"), "rb").read()
bundle = open(os.path.join(root, "samples", "taxii-bundle.json"), "rb").read()
TAXII = "application/taxii+json;version=2.1"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        authed = self.headers.get("Authorization", "").startswith(("Bearer ", "Basic "))
        base = f"http://127.0.0.1:{server.server_address[1]}"
        path = self.path.split("?")[0]
        extra = {}
        if not authed:
            status, ctype, body = 401, "application/json", b'{"error":{"code":"missing_api_key","message":"API key is required."}}'
        elif not taxii and path == "/api/v1/iocs":
            status, ctype, body = 200, "application/json", page
        elif taxii and path == "/api/taxii2/":
            status, ctype, body = 200, TAXII, json.dumps({"title": "demo", "default": f"{base}/api/taxii2/api/",
                                                          "api_roots": [f"{base}/api/taxii2/api/"]}).encode()
        elif taxii and path == "/api/taxii2/api/collections/":
            status, ctype, body = 200, TAXII, json.dumps({"collections": [
                {"id": "demo", "title": "All IOCs", "can_read": True, "can_write": False}]}).encode()
        elif taxii and path == "/api/taxii2/api/collections/demo/objects/":
            status, ctype, body = 200, TAXII, bundle
            extra["X-TAXII-Date-Added-Last"] = "2026-11-27T00:00:00.000000Z"
        else:
            status, ctype, body = 404, "application/json", b'{"title":"not found"}'
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for k, v in extra.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
with tempfile.TemporaryDirectory() as state:
    env = {
        "PATH": "/usr/bin:/bin",
        "SOCDEFENDERS_API_KEY": "sk_demo_not_a_real_key",
        "SOCDEFENDERS_APP_DIR": os.path.join(state, "no-app"),
    }
    url = f"http://127.0.0.1:{server.server_address[1]}"
    if taxii:
        cmd = [binary, "--source", "taxii", "--taxii-url", f"{url}/api/taxii2/", "--collection", "All IOCs",
               "--state-dir", state, "--since", "2026-11-26T00:00:00Z", "--dry-run"]
    else:
        cmd = [binary, "--base-url", url, "--state-dir", state, "--since", "2026-11-26T00:00:00Z", "--dry-run"]
    print("$ " + " ".join(cmd).replace(url, "http://127.0.0.1:<port>"), file=sys.stderr)
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    sys.stdout.write(res.stdout)
    sys.stderr.write(res.stderr)
server.shutdown()
sys.exit(res.returncode)
