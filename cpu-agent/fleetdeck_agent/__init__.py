"""fleetdeck CPU agent: samples this host with psutil and publishes to the broker."""
