"""The device physics of an RF spintronic network, in one place (resonators.py)."""
