"""hanota: host tools for the reference GB smart-metering IHD/PPMID OTA agent."""

__version__ = "0.1.0"
