"""The evidence: the append-only history (one JSON object per line) and the HMAC chain that makes tampering
visible. Imports only the modules beside the package (errors, secrets)."""
