"""``/problems`` and ``/problems/<slug>``: the platform's registry of problem types, one page per
type, so that every ``type`` URI in an error answer can be followed (RFC 9457 §3.1.1)."""
