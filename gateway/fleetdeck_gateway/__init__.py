"""fleetdeck gateway: the dashboard, the /ws relay and the HTTP API."""
