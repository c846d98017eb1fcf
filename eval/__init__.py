"""Offline evaluations run as modules: python -m eval.<name>."""
