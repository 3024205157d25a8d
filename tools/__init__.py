"""Developer tools that are not part of the gateway (mutation testing)."""
