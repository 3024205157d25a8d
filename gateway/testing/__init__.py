"""Test support shipped with the gateway for adapter packages (needs pytest)."""
