"""Authentication: registered clients, OAuth2 client credentials with ``private_key_jwt`` (SMART Backend Services),
short-lived access tokens carrying SMART scopes, and the checks the caller dependency makes."""
