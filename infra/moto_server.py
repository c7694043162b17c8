"""Starts a moto AWS emulator on 127.0.0.1 for the test suites.

Prints the chosen port on one line once the server answers, then serves until its parent process
(the test harness) exits, so no emulator outlives the tests that started it.

Usage: moto_server.py [PORT]   (PORT 0 or absent: a free port)
"""
import logging
import os
import socket
import sys
import time
import urllib.request

from moto.server import ThreadedMotoServer


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1] != "0" else free_port()
    parent = os.getppid()
    # One line per request on stderr would bury the test output.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
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
