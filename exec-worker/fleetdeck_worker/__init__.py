"""fleetdeck exec worker: runs queued commands on hosts over SSH and reports per host."""
