"""The rehearsal tests' workload.

serve [PORT]     HTTP: /healthz (500 once /fail was called), /readyz (503 while
                 /unready is on), /env/NAME, /file?path=, /stat?path=, /write?path=, /id,
                 /memory, /cpu, /fetch?url=, POST anything (answers the body size), anything
                 else (answers hostname and path). SIGTERM is logged and ends the server,
                 unless IGNORE_TERM=1. READ_AT_START=path makes start-up read a file first.
fetch URL        GET URL; print the status and body; exit 0 on 2xx, 1 otherwise.
exit CODE        print and exit with CODE (after SLEEP seconds, if set).
"""

import json
import os
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

STATE = {"healthy": True, "ready": True}


def fetch(url: str, timeout: float = 3) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310
            return answer.status, answer.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except Exception as error:
        return 0, f"{type(error).__name__}: {error}"


def flag(name: str, value: bool) -> Callable[[dict[str, str]], tuple[int, str]]:
    def set_flag(query: dict[str, str]) -> tuple[int, str]:
        STATE[name] = value
        return 200, f"{name}={value}"

    return set_flag


def read(query: dict[str, str]) -> tuple[int, str]:
    try:
        return 200, Path(query["path"]).read_text()
    except OSError as error:
        return 500, f"{type(error).__name__}: {error}"


def write(query: dict[str, str]) -> tuple[int, str]:
    try:
        Path(query["path"]).write_text("x")
    except OSError as error:
        return 500, f"{type(error).__name__}: {error}"
    return 200, "written"


def stat(query: dict[str, str]) -> tuple[int, str]:
    info = os.stat(query["path"])
    return 200, json.dumps(
        {"mode": oct(info.st_mode & 0o7777), "uid": info.st_uid, "gid": info.st_gid}
    )


def identity(query: dict[str, str]) -> tuple[int, str]:
    status = Path("/proc/self/status").read_text().splitlines()
    fields = {line.split(":")[0]: line.split(":", 1)[1].strip() for line in status if ":" in line}
    return 200, json.dumps(
        {
            "uid": os.getuid(),
            "gid": os.getgid(),
            "groups": os.getgroups(),
            "NoNewPrivs": fields.get("NoNewPrivs"),
            "CapEff": fields.get("CapEff"),
            "hostname": os.uname().nodename,
            "cwd": os.getcwd(),
        }
    )


def memory(query: dict[str, str]) -> tuple[int, str]:
    unified = Path("/sys/fs/cgroup/memory.max")
    legacy = Path("/sys/fs/cgroup/memory/memory.limit_in_bytes")
    return 200, (unified if unified.exists() else legacy).read_text().strip()


def cpu(query: dict[str, str]) -> tuple[int, str]:
    """The CPU quota per 100 ms period, in microseconds."""
    unified = Path("/sys/fs/cgroup/cpu.max")
    if unified.exists():
        return 200, unified.read_text().split()[0]
    return 200, Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text().strip()


def proxy(query: dict[str, str]) -> tuple[int, str]:
    status, body = fetch(query["url"])
    return 200, json.dumps({"status": status, "body": body[:500]})


ROUTES: dict[str, Callable[[dict[str, str]], tuple[int, str]]] = {
    "/healthz": lambda q: (200, "ok") if STATE["healthy"] else (500, "failing"),
    "/readyz": lambda q: (200, "ready") if STATE["ready"] else (503, "not ready"),
    "/fail": flag("healthy", False),
    "/unready": flag("ready", False),
    "/ready": flag("ready", True),
    "/file": read,
    "/write": write,
    "/stat": stat,
    "/id": identity,
    "/memory": memory,
    "/cpu": cpu,
    "/fetch": proxy,
}


class Handler(BaseHTTPRequestHandler):
    def reply(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path.startswith("/env/"):
            name = url.path.removeprefix("/env/")
            self.reply(200 if name in os.environ else 404, os.environ.get(name, ""))
        elif url.path in ROUTES:
            self.reply(*ROUTES[url.path](query))
        else:
            self.reply(200, f"{os.uname().nodename} {url.path}")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.reply(200, f"{os.uname().nodename} got {len(body)} bytes")

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(port: int) -> None:
    if os.environ.get("READ_AT_START"):
        Path(os.environ["READ_AT_START"]).read_text()
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)  # noqa: S104

    def terminate(signum: int, frame: object) -> None:
        print("got SIGTERM", flush=True)
        if os.environ.get("IGNORE_TERM") != "1":
            os._exit(0)

    signal.signal(signal.SIGTERM, terminate)
    print(f"serving on {port}", flush=True)
    server.serve_forever()


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else "serve"
    if command == "serve":
        serve(int(sys.argv[2]) if len(sys.argv) > 2 else 8080)
    elif command == "fetch":
        status, body = fetch(sys.argv[2])
        print(status, body, flush=True)
        sys.exit(0 if 200 <= status < 300 else 1)
    elif command == "exit":
        time.sleep(float(os.environ.get("SLEEP", "0")))
        print(f"exiting {sys.argv[2]}", flush=True)
        sys.exit(int(sys.argv[2]))


if __name__ == "__main__":
    main()
