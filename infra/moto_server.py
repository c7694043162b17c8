"""Starts a moto AWS emulator on 127.0.0.1 for the test suites.

Prints the chosen port on one line once the server answers, then serves until its parent process
(the test harness) exits, so no emulator outlives the tests that started it.

Usage: moto_server.py [PORT]   (PORT 0 or absent: a free port)
"""
import logging
import os
import socket
import sys
import threading
import time
import urllib.request

from moto.moto_server.threaded_moto_server import MotoRequestHandler
from moto.server import DomainDispatcherApplication, ThreadedMotoServer, create_backend_app
from werkzeug.serving import make_server


class SerialApp:
    """Handles one request at a time. DynamoDB applies each conditional write atomically; moto checks the
    condition and writes in two steps, so two requests served at once on its threads could both pass one
    condition (two sign-in attempts both taking the last free slot). Serialised, every request sees the
    writes of those before it, as DynamoDB guarantees. Moto holds the GIL while it works, so little
    parallelism is lost."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            # The whole answer is produced under the lock, not only its first part.
            return list(self.app(environ, start_response))


class SerialMotoServer(ThreadedMotoServer):
    """moto's threaded server, its requests serialised by `SerialApp`."""

    def _server_entry(self) -> None:
        app = SerialApp(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1] != "0" else free_port()
    parent = os.getppid()
    # One line per request on stderr would bury the test output.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = SerialMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    deadline = time.time() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1).read()
            break
        except OSError:
            if time.time() > deadline:
                print("moto server did not start within 30 s", file=sys.stderr, flush=True)
                sys.exit(1)
            time.sleep(0.05)
    print(port, flush=True)
    try:
        while os.getppid() == parent:
            time.sleep(0.5)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
