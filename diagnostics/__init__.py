"""The diagnostics library: log bundles built, redacted, checked and uploaded, and the logs that go in them.

- ``bundle``: the tar.gz with its manifest, caps and checksums, and the receiving side's checks;
- ``redact``: secrets masked before anything leaves the machine;
- ``logs``: the journal, log folders and device admin pages collected into a bundle;
- ``config``: ``LogsConfig``, what a bundle holds and how big it may grow;
- ``upload``: the resumable upload to the collector.

It imports nothing of the agent or the collector (only ``protocol``): the agent's service tests and
``hezo-diag`` live in ``agent.diag``, and the collector reads bundles with ``diagnostics.bundle``.
"""
