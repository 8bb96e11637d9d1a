"""Realistic, seeded, en_GB synthetic MIS data for tests, demos and benchmarks.

Why synthetic: real MIS exports are personal data about children. These extracts have the sizes of
real schools (``sizing.md`` 2-3) and the awkward cases real data has (``sizing.md`` 5): names with
diacritics and apostrophes, namesakes, temporary UPNs, leavers, pre-admissions, shared contacts. They
contain no invalid data: fault injection belongs to the data-quality tests.

Public API::

    generate_school(profile, seed, as_of, establishment_id=None, laestab=None) -> Extract
    generate_trust(seed, as_of) -> list[tuple[slug, laestab, Extract]]
    write_file_drop(extract, out_dir) / write_trust(trust, out_dir)
    PROFILES  # small-primary, large-primary, secondary, large-secondary, mat
"""

from mis_sync.generator.context import academic_year_label, academic_year_start
from mis_sync.generator.profiles import PROFILES, Profile
from mis_sync.generator.school import default_laestab, generate_school, snapshot_time
from mis_sync.generator.trust import generate_trust, plan_trust
from mis_sync.generator.writer import file_drop_spec, write_file_drop, write_trust

__all__ = [
    "PROFILES",
    "Profile",
    "academic_year_label",
    "academic_year_start",
    "default_laestab",
    "file_drop_spec",
    "generate_school",
    "generate_trust",
    "plan_trust",
    "snapshot_time",
    "write_file_drop",
    "write_trust",
]
