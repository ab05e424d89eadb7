"""Serving: the rendered book on 127.0.0.1 (make serve-report), where its search works as it cannot from disk.

Python's own file handler, in this process, kept inside the book: a path that
leads out of it (a symbolic link, `..`) and a folder without an index page are
answered 404, never listed. The port is tried before anything is served: one in
use is one line that names a free one.
"""

from __future__ import annotations

import errno
import socket
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from digits.util.display import shown

HOST = "127.0.0.1"
DEFAULT_PORT = 8000
INDEX_PAGES = ("index.html", "index.htm")  # what http.server serves for a folder


def inside(path: Path, folder: Path) -> bool:
    """True when `path` (resolved) is `folder` or lies in it."""
    return path == folder or folder in path.parents


class BookHandler(SimpleHTTPRequestHandler):
    """Python's file handler, answering 404 for anything outside its folder and for folder listings."""

    def send_head(self) -> Any:
        """The file to send, as http.server finds it, once it is known to lie inside the book."""
        path = Path(self.translate_path(self.path))
        if path.is_dir():
            path = next((path / name for name in INDEX_PAGES if (path / name).exists()), path)
        if not inside(path.resolve(), Path(self.directory).resolve()):
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")
            return None
        return super().send_head()

    def list_directory(self, path: Any) -> None:
        """No listings: a folder without an index page is not found."""
        self.send_error(HTTPStatus.NOT_FOUND, "File not found")


def port_is_free(port: int) -> bool:
    """True when a server could listen on the port of 127.0.0.1 now."""
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def serve(book: Path, port: int) -> None:
    """Serve the book's files on 127.0.0.1:port until Ctrl-C; ValueError naming a free port when it is in use."""
    try:
        server = ThreadingHTTPServer((HOST, port), partial(BookHandler, directory=str(book)))
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        free = next((other for other in range(port + 1, min(port + 100, 65535) + 1) if port_is_free(other)), port + 1)
        raise ValueError(f"port {port} on {HOST} is in use: make serve-report PORT={free}") from None
    print(f"serving {shown(book)} at http://{HOST}:{port}/ (Ctrl-C stops it)", flush=True)
    with server:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("stopped serving the book", flush=True)
