"""A local stand-in for the Hugging Face Hub, speaking the HTTP protocol huggingface_hub uses.

Repositories live in memory as commits (path -> bytes) with named refs. Served, as the Hub does:

- `HEAD/GET /{repo}/resolve/{revision}/{path}`: `X-Repo-Commit`, `ETag` (git blob id); weights (LFS files) answer
  302 to a second server standing for the CDN, with `X-Linked-Etag` (sha256) and `X-Linked-Size`;
- `GET /api/models/{repo}[/revision/{revision}]`: `sha` and `siblings`;
- `GET /api/models/{repo}/tree/{revision}`: the file list with sizes and LFS ids (snapshot_download's listing);
- errors as 404 with `X-Error-Code` RepoNotFound / RevisionNotFound / EntryNotFound;
- uploads: `POST /api/repos/create`, `/api/validate-yaml`, `/api/models/{repo}/preupload/{revision}` (every file
  "regular") and `/api/models/{repo}/commit/{revision}` (ndjson, base64 contents).

Every request is recorded in `requests` ("CDN GET /sha256" for the second server), so a test can check what was
asked.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

LFS_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt")


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeHub:
    def __init__(self):
        self.refs: dict[str, dict[str, str]] = {}  # repo_id -> ref name -> commit
        self.history: dict[str, set[str]] = {}  # repo_id -> every commit
        self.commits: dict[str, dict[str, bytes]] = {}  # commit -> files
        self.blobs: dict[str, bytes] = {}  # sha256 -> content (the CDN)
        self.requests: list[str] = []
        self.authorizations: list[str | None] = []
        self._servers = [ThreadingHTTPServer(("127.0.0.1", 0), _handler(self, hub)) for hub in (True, False)]
        self.url, self.cdn_url = (f"http://127.0.0.1:{server.server_address[1]}" for server in self._servers)

    def start(self) -> None:
        for server in self._servers:
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def publish(self, repo_id: str, files: dict[str, bytes] | Path, tags: tuple[str, ...] = ()) -> str:
        """A new commit on main holding exactly `files` (a dict or a folder); returns its id."""
        if isinstance(files, Path):
            files = {p.relative_to(files).as_posix(): p.read_bytes() for p in sorted(files.rglob("*")) if p.is_file()}
        digest = hashlib.sha1(f"{repo_id}{len(self.commits)}".encode())
        for path, data in sorted(files.items()):
            digest.update(path.encode() + git_blob_id(data).encode())
            if path.endswith(LFS_SUFFIXES):
                self.blobs[hashlib.sha256(data).hexdigest()] = data
        commit = digest.hexdigest()
        self.commits[commit] = dict(files)
        self.refs.setdefault(repo_id, {})["main"] = commit
        self.history.setdefault(repo_id, set()).add(commit)
        for tag in tags:
            self.refs[repo_id][tag] = commit
        return commit

    def resolve(self, repo_id: str, revision: str) -> str | None:
        if revision in self.refs[repo_id]:
            return self.refs[repo_id][revision]
        return revision if revision in self.history[repo_id] else None


def _handler(hub: FakeHub, is_hub: bool):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def do_HEAD(self):
            self._route(send_body=False)

        def do_GET(self):
            self._route(send_body=True)

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            hub.requests.append(f"POST {self.path}")
            hub.authorizations.append(self.headers.get("Authorization"))
            parts = _segments(self.path)
            if parts == ["api", "repos", "create"]:
                return self._create_repo(json.loads(body))
            if parts == ["api", "validate-yaml"]:
                return self._json({"errors": [], "warnings": []})
            if parts[:2] == ["api", "models"] and len(parts) == 6 and parts[4] in ("preupload", "commit"):
                repo_id = "/".join(parts[2:4])
                if repo_id not in hub.refs:
                    return self._error(404, "RepoNotFound")
                if parts[4] == "preupload":
                    files = [
                        {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                        for f in json.loads(body)["files"]
                    ]
                    return self._json({"files": files})
                return self._commit(repo_id, parts[5], body)
            self._error(404, None)

        def _route(self, send_body: bool):
            hub.requests.append(("" if is_hub else "CDN ") + f"{self.command} {self.path}")
            parts = _segments(self.path)
            if not is_hub:
                data = hub.blobs.get(parts[0]) if parts else None
                return self._bytes(data, {}, send_body) if data is not None else self._error(404, None)
            if parts[:2] == ["api", "models"] and len(parts) >= 4:
                return self._api(parts[2:])
            if len(parts) >= 5 and parts[2] == "resolve":
                return self._resolve("/".join(parts[:2]), parts[3], "/".join(parts[4:]), send_body)
            self._error(404, None)

        def _api(self, parts: list[str]):
            repo_id = "/".join(parts[:2])
            if repo_id not in hub.refs:
                return self._error(404, "RepoNotFound")
            revision = parts[3] if len(parts) >= 4 and parts[2] in ("revision", "tree") else "main"
            commit = hub.resolve(repo_id, revision)
            if commit is None:
                return self._error(404, "RevisionNotFound")
            files = hub.commits[commit]
            if len(parts) >= 3 and parts[2] == "tree":
                return self._json([_tree_entry(path, data) for path, data in sorted(files.items())])
            return self._json(
                {
                    "id": repo_id,
                    "modelId": repo_id,
                    "sha": commit,
                    "siblings": [{"rfilename": path} for path in sorted(files)],
                }
            )

        def _resolve(self, repo_id: str, revision: str, path: str, send_body: bool):
            if repo_id not in hub.refs:
                return self._error(404, "RepoNotFound")
            commit = hub.resolve(repo_id, revision)
            if commit is None:
                return self._error(404, "RevisionNotFound")
            data = hub.commits[commit].get(path)
            if data is None:
                return self._error(404, "EntryNotFound", {"X-Repo-Commit": commit})
            headers = {"X-Repo-Commit": commit, "ETag": f'"{git_blob_id(data)}"'}
            if path.endswith(LFS_SUFFIXES):
                sha256 = hashlib.sha256(data).hexdigest()
                headers.update(
                    {
                        "X-Linked-Etag": f'"{sha256}"',
                        "X-Linked-Size": str(len(data)),
                        "Location": f"{hub.cdn_url}/{sha256}",
                        "Content-Length": "0",
                    }
                )
                return self._send(302, headers, b"", send_body)
            self._bytes(data, headers, send_body)

        def _create_repo(self, payload: dict):
            repo_id = f"{payload.get('organization') or 'user'}/{payload['name']}"
            if repo_id in hub.refs:
                return self._error(409, None)
            hub.publish(repo_id, {".gitattributes": b""})
            self._json({"url": f"{hub.url}/{repo_id}"})

        def _commit(self, repo_id: str, revision: str, body: bytes):
            files = dict(hub.commits[hub.refs[repo_id][revision]])
            for line in body.splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            commit = hub.publish(repo_id, files)
            self._json({"commitUrl": f"{hub.url}/{repo_id}/commit/{commit}", "commitOid": commit})

        def _json(self, data):
            self._send(200, {"Content-Type": "application/json"}, json.dumps(data).encode(), True)

        def _bytes(self, data: bytes, headers: dict, send_body: bool):
            self._send(200, {**headers, "Content-Length": str(len(data))}, data, send_body)

        def _error(self, status: int, code: str | None, headers: dict | None = None):
            headers = {**(headers or {}), **({"X-Error-Code": code} if code else {})}
            self._send(status, {**headers, "Content-Type": "application/json"}, b'{"error": "not found"}', True)

        def _send(self, status: int, headers: dict, body: bytes, send_body: bool):
            self.send_response(status)
            headers.setdefault("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if send_body:
                self.wfile.write(body)

    return Handler


def _segments(path: str) -> list[str]:
    return [unquote(part) for part in urlsplit(path).path.split("/") if part]


def _tree_entry(path: str, data: bytes) -> dict:
    entry = {"type": "file", "oid": git_blob_id(data), "size": len(data), "path": path}
    if path.endswith(LFS_SUFFIXES):
        entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
    return entry


@pytest.fixture
def fake_hub():
    hub = FakeHub()
    hub.start()
    yield hub
    hub.stop()


@pytest.fixture
def hub_env(fake_hub, tmp_path, monkeypatch):
    """HF_ENDPOINT at the fake Hub, an empty HF_HOME, online; returns the environment for subprocesses."""
    pytest.importorskip("huggingface_hub")
    import huggingface_hub.constants

    from videomae.checkpoint.hub import fetch

    home = tmp_path / "hf_home"
    env = {
        "HF_ENDPOINT": fake_hub.url,
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(home / "hub"),
        "HF_HUB_OFFLINE": "0",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # huggingface_hub reads these once, when imported: mirror them in this process
    constants = huggingface_hub.constants
    url_template = fake_hub.url + "/{repo_id}/resolve/{revision}/{filename}"
    for name, value in {
        "ENDPOINT": fake_hub.url,
        "HF_HOME": env["HF_HOME"],
        "HF_HUB_CACHE": env["HF_HUB_CACHE"],
        "HF_HUB_OFFLINE": False,
        "HUGGINGFACE_CO_URL_TEMPLATE": url_template,
    }.items():
        monkeypatch.setattr(constants, name, value)
    fetch.cache_clear()
    yield env
    fetch.cache_clear()


def go_offline(monkeypatch) -> None:
    """HF_HUB_OFFLINE=1, in the environment and in huggingface_hub's constants; forget this process's downloads."""
    import huggingface_hub.constants

    from videomae.checkpoint.hub import fetch

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    fetch.cache_clear()
