"""Who may use the agent console.

For now one demo account behind HTTP Basic authentication; user accounts with roles and
per-queue permissions replace it with the full console.
"""

import hmac
import logging
import os
import secrets
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPBasic, HTTPBasicCredentials

log = logging.getLogger(__name__)


def demo_password(data_dir: Path, configured: str | None) -> str:
    """The configured password, or one generated once and kept in the data folder."""
    if configured:
        return configured
    path = data_dir / "console-password"
    if path.exists():
        return path.read_text().strip()
    password = secrets.token_urlsafe(12)
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    return password


class DemoAuth:
    """A FastAPI dependency that checks the demo credentials in constant time."""

    def __init__(self, username: str, password: str) -> None:
        self._username = username.encode()
        self._password = password.encode()
        self._basic = HTTPBasic(realm="Neuvonta console", auto_error=False)

    def dependency(self) -> object:
        basic = self._basic

        async def current_user(
            credentials: Annotated[HTTPBasicCredentials | None, Depends(basic)],
        ) -> str:
            if credentials is not None:
                user_ok = hmac.compare_digest(credentials.username.encode(), self._username)
                password_ok = hmac.compare_digest(credentials.password.encode(), self._password)
                if user_ok and password_ok:
                    return credentials.username
                log.info("console login refused")
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "Sign in to use the console.",
                headers={"WWW-Authenticate": 'Basic realm="Neuvonta console"'},
            )

        return current_user
