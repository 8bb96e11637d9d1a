"""MIS Sync: keeps a school's user accounts and classes in step with its MIS."""

__version__ = "0.1.0"
