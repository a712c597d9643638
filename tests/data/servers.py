"""Real servers on this machine for the remote-data tests and the loader benchmark: an S3-compatible moto server,
and an HTTP file server that honours byte ranges (as object stores and web servers do; `http.server` alone does
not), with added latency and injected failures."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class FileServer(ThreadingHTTPServer):
    """Serves `folder` on 127.0.0.1. `latency_s` delays every answer; `faults[name]` lists what the next
    requests for paths ending in `name` get instead of the file: "error" (503) or "stall" (no answer for
    `stall_s`). `requests` counts the answered requests and `sent` the body bytes."""

    daemon_threads = True

    def __init__(self, folder: str, latency_s: float = 0.0, stall_s: float = 3.0):
        super().__init__(("127.0.0.1", 0), partial(RangeHandler, directory=folder))
        self.latency_s, self.stall_s = latency_s, stall_s
        self.faults: dict[str, list[str]] = {}
        self.requests, self.sent = 0, 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def take_fault(self, path: str) -> str | None:
        with self.lock:
            self.requests += 1
            for name, pending in self.faults.items():
                if path.endswith(name) and pending:
                    return pending.pop(0)
        return None


class RangeHandler(SimpleHTTPRequestHandler):
    server: FileServer

    def log_message(self, *args) -> None:  # quiet
        pass

    def _fault(self) -> bool:
        time.sleep(self.server.latency_s)
        fault = self.server.take_fault(self.path)
        if fault == "error":
            self.send_error(503, "injected failure")
        elif fault == "stall":
            time.sleep(self.server.stall_s)
            self.close_connection = True
        return fault is not None

    def do_HEAD(self) -> None:
        if not self._fault():
            super().do_HEAD()

    def do_GET(self) -> None:
        if self._fault():
            return
        path = self.translate_path(self.path)
        if not os.path.isfile(path):
            return super().do_GET()  # folder listings, 404
        size = os.path.getsize(path)
        start, end, status = 0, size - 1, 200
        match = RANGE.match(self.headers.get("Range", ""))
        if match and (match.group(1) or match.group(2)):
            if match.group(1):
                start, end = int(match.group(1)), min(int(match.group(2) or size - 1), size - 1)
            else:  # the last N bytes
                start = max(size - int(match.group(2)), 0)
            status = 206
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(max(end - start + 1, 0)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        with open(path, "rb") as handle, contextlib.suppress(ConnectionError):
            handle.seek(start)
            data = handle.read(max(end - start + 1, 0))
            self.wfile.write(data)
            with self.server.lock:
                self.server.sent += len(data)


@contextlib.contextmanager
def serve_folder(folder: str, latency_s: float = 0.0) -> Iterator[FileServer]:
    """An HTTP server of `folder` running in a thread for the block."""
    server = FileServer(folder, latency_s)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


S3_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_SESSION_TOKEN": "testing",
}


@contextlib.contextmanager
def moto_s3(bucket: str) -> Iterator[str]:
    """A local S3-compatible server (moto) with an empty `bucket`; yields its endpoint, which the environment
    names for the block (`AWS_ENDPOINT_URL`, as a user would for MinIO or another S3-compatible store)."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved = {name: os.environ.get(name) for name in [*S3_ENVIRONMENT, "AWS_ENDPOINT_URL"]}
    os.environ.update(S3_ENVIRONMENT, AWS_ENDPOINT_URL=endpoint)
    try:
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()
        s3fs.S3FileSystem().mkdir(bucket)
        yield endpoint
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        server.stop()


def upload(local: str, url: str) -> str:
    """Copy a local folder to `url` (s3://...) through s3fs; returns the URL."""
    import s3fs

    fs = s3fs.S3FileSystem()
    for directory, _, names in os.walk(local):
        for name in names:
            path = os.path.join(directory, name)
            fs.put_file(path, f"{url}/{os.path.relpath(path, local)}")
    fs.invalidate_cache()
    return url
