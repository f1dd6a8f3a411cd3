"""Tokens: the OAuth2 token and revocation endpoints, the JWKS, service clients."""
