"""Simulations of the verdicts (a package, so their basenames may repeat tests/checks)."""
