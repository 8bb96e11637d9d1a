"""A OneRoster 1.2 Rostering Service (REST binding) served from the directory, read-only.

Modules: ``errors`` (the spec's status payloads), ``query`` (limit/offset/sort/fields/filter parsing,
pure), ``sqlquery`` (filters and sorts compiled to SQL), ``collections`` (each OneRoster collection as
one SQL select over the directory), ``mapping`` (rows to OneRoster objects), ``apps`` (registered
apps, hashed secrets), ``auth`` (OAuth 2.0 client credentials, signed bearer tokens, scopes),
``ratelimit``, ``routes`` and ``server`` (the FastAPI application). Docs: ``docs/oneroster-api.md``.
"""

BASE_PATH = "/ims/oneroster/rostering/v1p2"
