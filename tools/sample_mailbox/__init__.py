"""Deterministic generator for the bundled demo mailbox (service/demo/sample.mbox)."""
