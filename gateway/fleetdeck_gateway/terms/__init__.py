"""Interactive terminals as the gateway serves them: sessions and their frames (the PTY is the worker's)."""
