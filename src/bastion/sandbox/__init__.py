"""Sandboxing stdio servers with bubblewrap: the plan (pure) and the launcher (I/O)."""
