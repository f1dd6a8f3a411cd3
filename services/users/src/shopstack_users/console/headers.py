"""The security headers of every console response.

The policy allows scripts, styles and images from the service itself only: the console has
no inline script or style and loads nothing from anywhere else, so anything injected into a
page is refused by the browser. No page may be framed (clickjacking), no URL of the console
leaks to another site in a Referer, and pages (which show people's data) are never stored by
a browser or a proxy.
"""

from __future__ import annotations

from flask import Response

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), geolocation=(), microphone=(), payment=()",
}

# Pages: never stored. Assets whose URL names their content's hash: kept for a year (a new
# version has a new URL); an asset asked for without it: asked again each time.
NO_STORE = "no-store"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


def secure(response: Response, *, cache_control: str) -> Response:
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = cache_control
    if cache_control == NO_STORE:
        response.headers["Pragma"] = "no-cache"
    return response
