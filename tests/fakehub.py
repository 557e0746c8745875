"""A loopback stand-in for the Hugging Face Hub's upload API, for ``--push-to-hub`` tests.

It answers what ``huggingface_hub``'s ``create_repo`` and ``create_commit`` send, on
127.0.0.1 only: ``POST /api/repos/create``, ``POST /api/validate-yaml`` (a README's metadata must
be a YAML mapping with a ``license``), ``POST /api/datasets/<repo>/preupload/<rev>`` (every file
``regular``: sent inside the commit) and ``POST /api/datasets/<repo>/commit/<rev>`` (NDJSON; the
files are kept). A request without ``Authorization: Bearer <token>`` gets 401.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import yaml


class FakeHub:
    """The Hub's upload endpoints; ``repos`` maps ``namespace/name`` to its files (path ->
    bytes) and ``auth`` keeps every request's ``Authorization`` header."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.repos: dict[str, dict[str, bytes]] = {}
        self.auth: list[str] = []
        self.paths: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        """The Hub root, ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _answer(self, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if path == "/api/repos/create":
            data = json.loads(body)
            repo = (
                f"{data['organization']}/{data['name']}" if data["organization"] else data["name"]
            )
            url = f"{self.endpoint}/datasets/{repo}"
            if repo in self.repos:  # the Hub names the repo that is there
                return 409, {"error": "You already created this dataset repo", "url": url}
            self.repos[repo] = {}
            return 200, {"url": url}
        if path == "/api/validate-yaml":
            content = json.loads(body)["content"]
            match = re.match(r"---\n(.*?)\n---\n", content, re.S)
            meta = yaml.safe_load(match.group(1)) if match else None
            if not isinstance(meta, dict) or "license" not in meta:
                return 400, {"errors": [{"message": "metadata needs a license"}]}
            return 200, {"errors": [], "warnings": []}
        found = re.fullmatch(r"/api/datasets/(.+)/(preupload|commit)/([^/]+)", path)
        if found is None or found.group(1) not in self.repos:
            return 404, {"error": "Repository not found"}
        repo, action = found.group(1), found.group(2)
        if action == "preupload":
            files = json.loads(body)["files"]
            modes = [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files
            ]
            return 200, {"files": modes}
        for line in body.splitlines():
            item = json.loads(line)
            if item["key"] == "file":
                value = item["value"]
                self.repos[repo][value["path"]] = base64.b64decode(value["content"])
        oid = f"{len(self.paths):040x}"
        return 200, {"commitUrl": f"{self.endpoint}/datasets/{repo}/commit/{oid}", "commitOid": oid}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.split("?")[0]
                hub.paths.append(path)
                hub.auth.append(self.headers.get("Authorization", ""))
                if self.headers.get("Authorization") != f"Bearer {hub.token}":
                    status, answer = 401, {"error": "Invalid credentials in Authorization header"}
                else:
                    status, answer = hub._answer(path, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
