"""Settings shared by every qrcharge component (CSMS, charge point, tools)."""

from config.settings import Settings, load_settings

__all__ = ["Settings", "load_settings"]
