"""fleetdeck: the umbrella command (`fleetdeck up`, `fleetdeck token add`, `fleetdeck exec`)."""
