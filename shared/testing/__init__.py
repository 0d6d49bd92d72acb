"""Test support shipped with the package so every service's tests share one broker and drain()."""
