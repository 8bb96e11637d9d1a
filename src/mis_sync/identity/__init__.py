"""Identity continuity: the same person under a new MIS id keeps their account (see ``identity.plan``)."""
