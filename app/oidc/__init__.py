"""OIDC for trusted publishing: issuers, JWKS, token verification, publishers.

Business layer only (no web framework, no database). Modules:

* :mod:`app.oidc.errors`     typed errors with PyPI's codes
* :mod:`app.oidc.providers`  the four providers as data; IssuerRegistry
* :mod:`app.oidc.jwks`       JWKSCache (per-kid, refresh on unknown kid with
                             a cool-down); httpx / file:// fetcher
* :mod:`app.oidc.verifier`   TokenVerifier -> VerifiedToken
* :mod:`app.oidc.publishers` trusted-publisher claim rules per provider
* :mod:`app.oidc.dev_issuer` a built-in issuer for development mode
"""
