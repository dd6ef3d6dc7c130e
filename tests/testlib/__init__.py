"""Helpers shared by tests (on pytest's pythonpath): loopback servers and the like."""
