"""The /ws socket: its loops, frames, outbox, fan-out to clients and what each frame does."""
