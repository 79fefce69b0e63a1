"""Least-privilege policy: rules and argument constraints that decide each call, purely."""
