"""chatcluster: real-time chat for Django that runs as a cluster (docs/integrate.md)."""

__version__ = "0.1.0"
