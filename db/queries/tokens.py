"""Queries of the ``api_tokens`` table: bearer tokens stored hashed."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.columns import equals, text_problem
from db.models import ApiToken


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, *, name: str, device: str | None = None) -> str:
    """Create a token and return it in clear text (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    session.add(ApiToken(name=name, token_hash=hash_token(token), device=device))
    session.flush()
    return token


def get_token(session: Session, *, name: str) -> ApiToken | None:
    return session.scalar(select(ApiToken).where(equals(ApiToken.name, name)))


def find_token(session: Session, *, token: str) -> ApiToken | None:
    """The valid (not revoked) token matching ``token``."""
    if text_problem(token):  # never issued: token_urlsafe is ASCII
        return None
    return session.scalar(
        select(ApiToken).where(ApiToken.token_hash == hash_token(token), ApiToken.revoked.is_(False))
    )


def revoke_token(session: Session, *, name: str) -> bool:
    row = get_token(session, name=name)
    if row is None:
        return False
    row.revoked = True
    return True


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.name)))
