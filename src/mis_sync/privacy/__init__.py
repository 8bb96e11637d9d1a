"""Children's data under UK GDPR: retention, subject access, erasure and lineage (issue 21).

Schools are the data controllers; these modules make their duties (storage limitation, access and
erasure requests, records of processing) something an IT admin can carry out with one command.
"""
