"""AssessIQ: peer-to-peer, local-first technical interviews with verifiable integrity records."""

__version__ = "0.1.0"

__all__ = ["__version__"]
