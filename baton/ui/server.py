"""`baton ui`: the local web app (standard library http.server, 127.0.0.1 only).

Every request first passes ``baton.httpguard``: another Host (DNS rebinding) or a foreign Origin
(a page in the user's browser) is answered 403. Pages are server-rendered; the one script
(``assets/app.js``, shipped here) only opens a bar's detail and reloads a page while its run runs.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from baton import httpguard
from baton.errors import BatonError
from baton.ui import pages
from baton.ui.reader import Reader

ASSETS = Path(__file__).with_name("assets")
CONTENT_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
DEFAULT_PORT = 8766


class Handler(BaseHTTPRequestHandler):
    """Routes a request to a page; the server's ``reader`` reads the stack."""

    server: UiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def do_OPTIONS(self) -> None:
        if not self._refused():
            self._send(HTTPStatus.NO_CONTENT, b"", "text/plain")

    def do_GET(self) -> None:
        if self._refused():
            return
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        picked = parse_qs(parts.query).get("pick", [])
        path = unquote(parts.path)
        try:
            if path.startswith("/assets/"):
                self._asset(path.removeprefix("/assets/"))
            elif path == "/":
                rows = self.server.reader.recent()
                self._html(pages.runs_page(rows, query.get("engine") or None,
                                           query.get("status") or None))
            elif path == "/api/runs":
                self._json([row.__dict__ for row in self.server.reader.recent()])
            elif path.startswith("/runs/") and "/bars/" in path:
                run_id, _, index = path.removeprefix("/runs/").partition("/bars/")
                self._bar(run_id, index)
            elif path.startswith("/runs/"):
                view = self.server.reader.run(path.removeprefix("/runs/"))
                self._html(pages.run_page(view, self.server.reader.cost(view)))
            elif path == "/objects":
                text = self.server.reader.object_text(query.get("key", ""))
                self._send(HTTPStatus.OK, text.encode(), "text/plain; charset=utf-8")
            elif path == "/compare":
                self._compare(picked or [query.get("a", ""), query.get("b", "")])
            elif path == "/monitor":
                self._html(self.server.monitor())
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
        except BatonError as error:
            self._send(HTTPStatus.NOT_FOUND, f"{error}\n".encode(), "text/plain; charset=utf-8")

    def _refused(self) -> bool:
        reason = httpguard.refusal(dict(self.headers.items()), self.server.server_port)
        if reason is None:
            return False
        self._send(HTTPStatus.FORBIDDEN, f"{reason}\n".encode(), "text/plain; charset=utf-8")
        return True

    def _compare(self, picked: list[str]) -> None:
        reader = self.server.reader
        chosen = [run_id for run_id in picked if run_id][:2]
        runs = [(view, reader.cost(view)) for view in map(reader.run, chosen)]
        self._html(pages.compare_page(runs, reader.recent(), chosen))

    def _bar(self, run_id: str, index: str) -> None:
        view = self.server.reader.run(run_id)
        if not index.isdigit() or int(index) >= len(view.bars):
            raise BatonError(f"run {run_id} has no bar {index}")
        bar = view.bars[int(index)]
        self._json(pages.bar_detail(view, int(index), self.server.reader.log_lines(bar)))

    def _asset(self, name: str) -> None:
        path = ASSETS / name
        if "/" in name or path.suffix not in CONTENT_TYPES or not path.is_file():
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
            return
        self._send(HTTPStatus.OK, path.read_bytes(), CONTENT_TYPES[path.suffix])

    def _html(self, text: str) -> None:
        self._send(HTTPStatus.OK, text.encode(), "text/html; charset=utf-8")

    def _json(self, value: Any) -> None:
        self._send(HTTPStatus.OK, json.dumps(value, default=str).encode(), "application/json")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        origin = self.headers.get("Origin")
        if origin and status != HTTPStatus.FORBIDDEN:  # an allowed origin (the guard passed it)
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Vary", "Origin")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class UiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, reader: Reader, monitor: Callable[[], str],
                 verbose: bool = False) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.reader = reader
        self.monitor = monitor
        self.verbose = verbose

    @property
    def url(self) -> str:
        """Where the UI is served."""
        return f"http://127.0.0.1:{self.server_port}/"

    def start(self) -> None:
        """Serve in a background thread (tests, embedding)."""
        threading.Thread(target=self.serve_forever, name="baton-ui", daemon=True).start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.shutdown()
        self.server_close()


def monitor_view(target: str, stack: str) -> Callable[[], str]:
    """The Monitor page of a stack, read afresh on each call."""
    from baton.monitoring import monitor_table, recent_alerts
    from baton.watch import Watch, watchlist_table

    def render() -> str:
        table = monitor_table(target, stack)
        runs = table.recent_runs(12)
        checks = {run.run_id: table.run_checks(run.run_id) for run in runs}
        return pages.monitor_page(Watch(watchlist_table(target, stack)).entries(), runs, checks,
                                  recent_alerts(target, stack))

    return render


def serve(target: str, stack: str, port: int = DEFAULT_PORT, verbose: bool = False) -> UiServer:
    """A UI server for the stack on 127.0.0.1:``port`` (0: any free port), not yet started."""
    try:
        return UiServer(port, Reader(target, stack), monitor_view(target, stack), verbose)
    except OSError as error:
        raise BatonError(f"cannot serve the UI on 127.0.0.1:{port}: {error.strerror}; "
                         "choose another --port") from error
