"""Writers that render a canonical ``Extract`` in a source's own shape (files a connector reads back).

Why: "the generator can write a school in each shape", so every connector is tested by a round trip
(generate → write in the source's shape → extract → compare) at a real school's size. Each module here
is one shape and imports only what it needs; import the module you want, e.g.
``from mis_sync.generator.shapes.sims_commandreporter import write_sims_commandreporter``.
"""
