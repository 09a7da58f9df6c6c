"""What the centre's and the purchaser's `ggzy` commands share: one signed-in HTTP session on the API.

The server and the credentials come as for every client command: `--url` / `GGZY_URL`, and `--username`
(`GGZY_USERNAME`, password from `GGZY_PASSWORD`, else prompted) or `GGZY_TOKEN`. A refusal is the server's
RFC 9457 problem, printed on one line with its status, title, rule id and the fields it names, and the
command exits 1.
"""

from __future__ import annotations

import json
import os
from typing import Any

import click
import httpx

from storage.cli import server_url as server_url

username_opt = click.option(
    "--username",
    envvar="GGZY_USERNAME",
    default=None,
    help="Sign in as this user (or set GGZY_USERNAME), with the password from GGZY_PASSWORD, else "
    "prompted; without a username, GGZY_TOKEN (an API or access token) is sent instead.",
)


def problem_line(status: int, problem: dict[str, Any]) -> str:
    """One line for a refusal: `409 Conflict [G-01]: detail (field: message)`."""
    title = problem.get("title") or "request refused"
    rule = f" [{problem['rule']}]" if problem.get("rule") else ""
    errors = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in problem.get("errors") or [])
    return f"{status} {title}{rule}: {problem.get('detail') or ''}" + (f" ({errors})" if errors else "")


class Api:
    """A signed-in session on the server; every call answers the decoded body or raises the problem."""

    def __init__(self, url: str, username: str | None) -> None:
        self.http = httpx.Client(base_url=url, timeout=60, headers={"User-Agent": "ggzy-client/1"})
        token = os.environ.get("GGZY_TOKEN")
        if username:
            password = os.environ.get("GGZY_PASSWORD") or click.prompt("password", hide_input=True)
            token = self.call("POST", "/api/v1/auth/login", {"username": username, "password": password})[
                "access_token"
            ]
        elif not token:
            raise click.UsageError("sign in: pass --username (password from GGZY_PASSWORD) or set GGZY_TOKEN")
        self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        r = self.http.request(method, path, json=body, params=params)
        if r.status_code >= 400:
            try:
                problem = r.json()
            except ValueError:
                problem = {"title": r.text[:200]}
            if not isinstance(problem, dict):
                problem = {"title": str(problem)}
            raise click.ClickException(problem_line(r.status_code, problem))
        return r.json() if r.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params={k: v for k, v in params.items() if v is not None} or None)

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, body)


def session(url: str, username: str | None) -> Api:
    """A signed-in session (exit 1 with the problem if signing in is refused)."""
    return Api(url, username)


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2))
