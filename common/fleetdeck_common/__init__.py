"""Shared pieces of fleetdeck: settings, message models, target grammar, broker."""

PROTOCOL_VERSION = 1
__version__ = "0.1.0"
