"""Shared pieces of fleetdeck: settings, message models, target grammar, stores, broker.

The protocol's version is `messages.PROTOCOL_VERSION`; the package's is `__version__`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    # Written once, in the repository's VERSION file; the installed metadata carries it.
    __version__ = version("fleetdeck-common")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
