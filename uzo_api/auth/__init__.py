"""Authentication: passwords, tokens, API keys, throttling, mail."""
