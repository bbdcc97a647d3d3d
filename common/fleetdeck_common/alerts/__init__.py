"""Alert rules and how they fire: the rules file's grammar, the firing/resolved state machine and
the payloads sent to webhooks and Alertmanager. Pure: no I/O (but `rulesfile`, which reads the
file)."""
