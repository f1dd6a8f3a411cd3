"""A small supervised set for the stop-path tests: the life `make up` leads (start-up steps,
watching, the stop), with cheap children instead of the platform's servers.

Reads one command a line from stdin and runs one life per line:
  ``up``       three children start, ``up`` is printed, the run waits for a stop signal;
  ``startup``  a start-up that never finishes on its own: a migration-like command, then a
               readiness wait that never succeeds; a last child (``late``) would start after
               them.
After each life it prints ``exit <code>``. Every child's process group is printed as it starts
(``pgid <name> <pgid>``), so the test can check that none is left.
"""

from __future__ import annotations

import sys
from pathlib import Path

from shopstack_devstack.logview import LogView
from shopstack_devstack.processes import Child, Supervisor


class ReportingSupervisor(Supervisor):
    def start(self, child: Child) -> Child:
        started = super().start(child)
        assert started.process is not None
        print(f"pgid {child.name} {started.process.pid}", flush=True)
        return started


def life(command: str, run_dir: Path, view: LogView) -> int:
    supervisor = ReportingSupervisor(view, run_dir)

    def start(name: str, script: str, stop_timeout: float = 5.0) -> Child:
        return supervisor.start(Child(name, ["sh", "-c", script], stop_timeout=stop_timeout))

    def databases() -> None:
        start("database", "exec sleep 600")

    def services() -> None:
        # A server with a worker in its group, and one whose worker ignores SIGTERM.
        start("service", "sleep 600 & exec sleep 600")
        start("stubborn", "(trap '' TERM; exec sleep 600) & exec sleep 600", stop_timeout=0.1)

    def migration() -> None:
        supervisor.run_to_completion(Child("migrate", ["sleep", "0.2"]))

    def never_ready() -> None:
        waiting = start("waiting", "exec sleep 600")
        supervisor.wait_until(lambda: False, child=waiting, timeout=600, what="never")

    def late() -> None:
        start("late", "exec sleep 600")

    def ready() -> None:
        print("up", flush=True)

    if command == "up":
        steps = [supervisor.reap_leftovers, databases, services]
    else:
        steps = [supervisor.reap_leftovers, databases, migration, never_ready, late]
    return supervisor.run(steps, ready=ready)


def main() -> None:
    run_dir = Path(sys.argv[1])
    view = LogView(sys.stdout)
    for line in sys.stdin:
        # Between lives a late second signal finds the last life's handler, as it would
        # after `make up` has stopped.
        print(f"exit {life(line.strip(), run_dir, view)}", flush=True)


if __name__ == "__main__":
    main()
