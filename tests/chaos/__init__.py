"""Crash, restart and fault runs of the worker (see chaos.py)."""
