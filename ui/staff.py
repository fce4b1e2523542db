"""Who may open the customer-service console: one staff login, never a default password.

The password comes from `$SHOPASSIST_STAFF_PASSWORD`, else from `staff_password` in the state dir,
created on first start with a random value and readable by its owner only; `make run` prints where it
is. The user name is `$SHOPASSIST_STAFF_USER` or "staff".
"""

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from assistant.config import state_dir

DEFAULT_USER = "staff"


@dataclass(frozen=True)
class StaffLogin:
    user: str
    password: str = ""
    source: str = ""  # where the password is kept, for the start-up message

    def check(self, user: str, password: str) -> bool:
        """Gradio's `auth` callable: constant-time comparison of both fields."""
        same_user = secrets.compare_digest(str(user).encode(), self.user.encode())
        same_password = secrets.compare_digest(str(password).encode(), self.password.encode())
        return bool(self.password) and same_user and same_password


def password_file() -> Path:
    return state_dir() / "staff_password"


def staff_login() -> StaffLogin:
    user = os.environ.get("SHOPASSIST_STAFF_USER") or DEFAULT_USER
    password = os.environ.get("SHOPASSIST_STAFF_PASSWORD")
    if password:
        return StaffLogin(user, password, "$SHOPASSIST_STAFF_PASSWORD")
    path = password_file()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(18) + "\n")
    password = path.read_text(encoding="utf-8").strip()
    return StaffLogin(user, password, str(path))
