"""Runs what a Helm chart renders as Docker containers, the way the kubelet would."""
