"""Stored heavy results (long fits, SBC, the worked interim) with manifests, and their rebuild."""
