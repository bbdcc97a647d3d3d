"""What the broker says, turned into frames: the relay, fleet, presence, job results, host history."""
