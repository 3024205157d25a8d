"""Pluggable backends.

Each module here implements :class:`gateway.adapter.AdapterFactory` and is
registered under the ``lc2_gateway.adapters`` entry-point group in
``pyproject.toml``; a department ships its own adapter the same way from its
own package.  Adapters import nothing of the gateway but ``gateway.adapter``.
"""
