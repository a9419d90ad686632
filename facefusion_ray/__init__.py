"""Distributed, cached, resumable batch face swapping on Ray."""

__version__ = "0.1.0"
