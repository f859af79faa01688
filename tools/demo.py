#!/usr/bin/env python3
"""`make demo`: serves samples/iocs-page.json as GET /api/v1/iocs on loopback, runs the built
binary once against it (--dry-run, a throw-away state dir, a fake key), and prints the events
it would index, one JSON object per line, followed by its stderr log lines."""
import http.server
import os
import subprocess
import sys
import tempfile
import threading

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
binary = sys.argv[1]
page = open(os.path.join(root, "samples", "iocs-page.json"), "rb").read()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path.startswith("/api/v1/iocs") and self.headers.get("Authorization", "").startswith("Bearer ")
        body = page if ok else b'{"error":{"code":"missing_api_key","message":"API key is required."}}'
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json")
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
    cmd = [binary, "--base-url", f"http://127.0.0.1:{server.server_address[1]}",
           "--state-dir", state, "--since", "2026-11-26T00:00:00Z", "--dry-run"]
    print("$ " + " ".join(cmd[:1] + ["--base-url", "http://127.0.0.1:<port>"] + cmd[3:]), file=sys.stderr)
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    sys.stdout.write(res.stdout)
    sys.stderr.write(res.stderr)
server.shutdown()
sys.exit(res.returncode)
