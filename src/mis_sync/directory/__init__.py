"""The user directory MIS Sync maintains: users, groups, memberships, an append-only audit log."""
