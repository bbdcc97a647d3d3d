"""Long history over HTTP: which tier answers a span (query.py, pure), the hosts a target expression
selects (select.py, pure), reading the tiers (reader.py) and the two routes (api.py)."""
