"""Alerts in the gateway: evaluating the rules against the fleet (by one gateway at a time), the
`alerts` topic and API, and sending transitions to a webhook and to Alertmanager."""
