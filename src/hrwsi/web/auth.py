"""Who may act in the console: the token, the session cookie and CSRF protection.

* Without ``HRWSI_DASHBOARD_TOKEN`` the console is read-only: every action is refused.
* With it, an operator signs in by posting the token (compared with
  :func:`hmac.compare_digest`) and a name; the session cookie holds the name and an HMAC of it
  under a key derived from the token, so it cannot be forged and dies when the token changes.
  Scripts may instead send ``Authorization: Bearer <token>``.
* Every POST carries a CSRF token: a signed double submit. The ``hrwsi_csrf`` cookie holds a
  random nonce; forms carry ``nonce.hmac(nonce)``; a POST is accepted only when the form's
  value signs the cookie's nonce (another site can neither read the cookie nor sign).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

SESSION_COOKIE = "hrwsi_session"
CSRF_COOKIE = "hrwsi_csrf"
_ACTOR = re.compile(r"[^A-Za-z0-9_.@:+-]")


def clean_actor(name: str) -> str:
    """A name fit for the audit log and a cookie (letters, digits, ``_.@:+-``, ≤ 64)."""
    return _ACTOR.sub("", name)[:64] or "operator"


@dataclass(frozen=True)
class Guard:
    """The console's token (``None``: read-only)."""

    token: str | None

    @property
    def enabled(self) -> bool:
        return bool(self.token)

    def _key(self, purpose: str) -> bytes:
        assert self.token
        return hmac.new(self.token.encode(), purpose.encode(), hashlib.sha256).digest()

    def _sign(self, purpose: str, value: str) -> str:
        return hmac.new(self._key(purpose), value.encode(), hashlib.sha256).hexdigest()

    def token_matches(self, candidate: str | None) -> bool:
        if not self.enabled or not candidate:
            return False
        assert self.token
        return hmac.compare_digest(candidate.encode(), self.token.encode())

    # -- session ---------------------------------------------------------------------------

    def session_value(self, actor: str) -> str:
        actor = clean_actor(actor)
        return f"{actor}|{self._sign('session', actor)}"

    def actor_of(self, cookie: str | None, authorization: str | None = None) -> str | None:
        """The signed-in operator's name, or None (not signed in, or read-only)."""
        if not self.enabled:
            return None
        if authorization and authorization.startswith("Bearer "):
            if self.token_matches(authorization.removeprefix("Bearer ").strip()):
                return "api"
            return None
        if not cookie or "|" not in cookie:
            return None
        actor, signature = cookie.rsplit("|", 1)
        expected = self._sign("session", actor)
        return actor if hmac.compare_digest(signature, expected) else None

    # -- CSRF ------------------------------------------------------------------------------

    @staticmethod
    def new_nonce() -> str:
        return secrets.token_urlsafe(24)

    def csrf_token(self, nonce: str) -> str:
        """The form value for the cookie's nonce (empty when read-only)."""
        if not self.enabled:
            return ""
        return f"{nonce}.{self._sign('csrf', nonce)}"

    def csrf_ok(self, cookie_nonce: str | None, form_value: str | None) -> bool:
        if not self.enabled or not cookie_nonce or not form_value or "." not in form_value:
            return False
        nonce, signature = form_value.rsplit(".", 1)
        return hmac.compare_digest(nonce, cookie_nonce) and hmac.compare_digest(
            signature, self._sign("csrf", nonce)
        )
