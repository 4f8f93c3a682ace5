"""The store: tables (``schema``), engine and migrations (``database``), read queries (``queries``)."""
