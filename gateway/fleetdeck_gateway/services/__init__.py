"""What the handlers and the HTTP API call: chat, job submit and cancel, the audit trail."""
