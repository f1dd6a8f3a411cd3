"""The rehearsal tests' workload.

serve [PORT]     HTTP: /healthz (500 once /fail was called), /readyz (503 while
                 /unready is on), /env/NAME, /file?path=, /write?path=, /id, /fetch?url=,
                 /echo (POST body size); logs SIGTERM and exits (or ignores it with
                 IGNORE_TERM=1); READ_AT_START=path makes start-up read a file first.
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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE = {"healthy": True, "ready": True}


def fetch(url: str, timeout: float = 3) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310
            return answer.status, answer.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except Exception as error:  # noqa: BLE001
        return 0, f"{type(error).__name__}: {error}"


class Handler(BaseHTTPRequestHandler):
    def reply(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        path = url.path
        if path == "/healthz":
            self.reply(200 if STATE["healthy"] else 500, "ok" if STATE["healthy"] else "failing")
        elif path == "/readyz":
            self.reply(200 if STATE["ready"] else 503, "ready" if STATE["ready"] else "not ready")
        elif path == "/fail":
            STATE["healthy"] = False
            self.reply(200, "will fail liveness")
        elif path == "/unready":
            STATE["ready"] = False
            self.reply(200, "unready")
        elif path == "/ready":
            STATE["ready"] = True
            self.reply(200, "ready")
        elif path.startswith("/env/"):
            name = path.removeprefix("/env/")
            self.reply(200 if name in os.environ else 404, os.environ.get(name, ""))
        elif path == "/file":
            try:
                with open(query["path"]) as handle:
                    self.reply(200, handle.read())
            except OSError as error:
                self.reply(500, f"{type(error).__name__}: {error}")
        elif path == "/stat":
            info = os.stat(query["path"])
            self.reply(
                200,
                json.dumps(
                    {"mode": oct(info.st_mode & 0o7777), "uid": info.st_uid, "gid": info.st_gid}
                ),
            )
        elif path == "/write":
            try:
                with open(query["path"], "w") as handle:
                    handle.write("x")
                self.reply(200, "written")
            except OSError as error:
                self.reply(500, f"{type(error).__name__}: {error}")
        elif path == "/id":
            status = open("/proc/self/status").read()
            fields = {
                line.split(":")[0]: line.split(":", 1)[1].strip()
                for line in status.splitlines()
                if ":" in line
            }
            self.reply(
                200,
                json.dumps(
                    {
                        "uid": os.getuid(),
                        "gid": os.getgid(),
                        "groups": os.getgroups(),
                        "NoNewPrivs": fields.get("NoNewPrivs"),
                        "CapEff": fields.get("CapEff"),
                        "hostname": os.uname().nodename,
                        "cwd": os.getcwd(),
                    }
                ),
            )
        elif path == "/memory":
            self.reply(
                200,
                open("/sys/fs/cgroup/memory.max").read().strip()
                if os.path.exists("/sys/fs/cgroup/memory.max")
                else open("/sys/fs/cgroup/memory/memory.limit_in_bytes").read().strip(),
            )
        elif path == "/fetch":
            status, body = fetch(query["url"])
            self.reply(200, json.dumps({"status": status, "body": body[:500]}))
        else:
            self.reply(200, f"{os.uname().nodename} {path}")

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self.reply(200, f"{os.uname().nodename} got {len(body)} bytes")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def serve(port: int) -> None:
    if os.environ.get("READ_AT_START"):
        with open(os.environ["READ_AT_START"]) as handle:
            handle.read()
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)  # noqa: S104

    def terminate(signum: int, frame: object) -> None:
        print("got SIGTERM", flush=True)
        if os.environ.get("IGNORE_TERM") == "1":
            return
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
