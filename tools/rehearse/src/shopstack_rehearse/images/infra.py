"""Holds a pod's network namespace (like the kubelet's pause container) until SIGTERM."""

import signal
import sys

# As PID 1 the process gets no default signal actions, so it waits for them explicitly.
STOP = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
signal.pthread_sigmask(signal.SIG_BLOCK, STOP)
signal.sigwait(STOP)
sys.exit(0)
