"""The agent's diagnostics: its devices' service tests and its log bundles, on site or by command.

- ``servicetests``: every configured check of every device once, as the agent would judge it;
- ``deep``: one device's checks repeated, with loss and timing, plus in-depth extras per driver;
- ``logs``: the agent's log bundle, built by the ``diagnostics`` library from the agent's config;
- ``cli``: ``hezo-diag``, which runs them on site without a broker.
"""
