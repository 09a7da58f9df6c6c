"""Settings, read once from `GGZY_*` environment variables."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict


def _env(name: str, default: str) -> str:
    return os.environ.get(f"GGZY_{name}", default)


PRODUCTION = "production"
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


class SettingsError(ValueError):
    """The configuration contradicts itself; the process refuses to start."""


@dataclass(frozen=True)
class Settings:
    """Everything configurable about one ggzy process.

    The defaults are the embedded setup of `make run`: SQLite and local objects under `var/`, jobs
    in-process. Production sets the database, S3 and Redis variables.
    """

    var_dir: Path = Path("var")
    database_url: str = ""
    db_pool_size: int = 20
    redis_url: str = ""
    s3_endpoint: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = field(default="", repr=False)
    s3_bucket: str = "ggzy"
    s3_secure: bool = False
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = ""
    secret_key: str = field(default="", repr=False)
    log_signing_key: str = field(default="", repr=False)
    token_ttl_minutes: int = 60
    max_body_bytes: int = 1_048_576
    tick_seconds: float = 5.0
    tick_concurrency: int = 1
    audit_head_minutes: float = 10.0
    upload_quota_bytes: int = 4 * 1024 * 1024 * 1024
    job_backoff_seconds: float = 1.0
    job_backoff_cap_seconds: float = 600.0
    job_retry_hours: float = 48.0
    job_lease_seconds: float = 300.0
    escrow_account: str = "31050161393600000888"
    escrow_account_name: str = "公共资源交易中心保证金专户"
    escrow_bank: str = "中国建设银行上海市分行营业部"
    escrow_virtual_prefix: str = "9558"
    bank_notify_secret: str = field(default="", repr=False)
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4
    signin_free_attempts: int = 5
    signin_address_free_attempts: int = 20
    signin_lockout_seconds: int = 60
    signin_max_lockout_seconds: int = 900
    signin_forget_seconds: int = 3600
    env: str = "development"
    rehearsal: bool = False

    def __post_init__(self) -> None:
        if self.rehearsal and self.is_production:
            raise SettingsError(
                "GGZY_REHEARSAL is refused where GGZY_ENV=production: a rehearsal clock runs ahead of real "
                "time, and no real trade may be decided on it."
            )

    @property
    def is_production(self) -> bool:
        """A production deployment: GGZY_ENV=production (any case)."""
        return self.env.strip().lower() == PRODUCTION

    @property
    def effective_database_url(self) -> str:
        """The SQLAlchemy URL: `GGZY_DATABASE_URL` or the SQLite file in `var/`."""
        return self.database_url or f"sqlite+aiosqlite:///{self.var_dir / 'ggzy.db'}"

    @property
    def effective_public_url(self) -> str:
        """Base URL the server is reached at (used in presigned local-object URLs)."""
        return self.public_url or f"http://{self.host}:{self.port}"

    @classmethod
    def from_env(cls) -> Settings:
        """Read the settings from the environment once."""
        var_dir = Path(_env("VAR_DIR", "var"))
        secret = _env("SECRET_KEY", "")
        if not secret:
            secret = _persistent_secret(var_dir)
        return cls(
            var_dir=var_dir,
            database_url=_env("DATABASE_URL", ""),
            db_pool_size=max(1, int(_env("DB_POOL_SIZE", "20"))),
            redis_url=_env("REDIS_URL", ""),
            s3_endpoint=_env("S3_ENDPOINT", ""),
            s3_access_key=_env("S3_ACCESS_KEY", os.environ.get("AWS_ACCESS_KEY_ID", "")),
            s3_secret_key=_env("S3_SECRET_KEY", os.environ.get("AWS_SECRET_ACCESS_KEY", "")),
            s3_bucket=_env("S3_BUCKET", "ggzy"),
            s3_secure=_env("S3_SECURE", "false").lower() == "true",
            host=_env("HOST", "127.0.0.1"),
            port=int(_env("PORT", "8000")),
            public_url=_env("PUBLIC_URL", ""),
            secret_key=secret,
            log_signing_key=_env("LOG_SIGNING_KEY", ""),
            token_ttl_minutes=int(_env("TOKEN_TTL_MINUTES", "60")),
            max_body_bytes=int(_env("MAX_BODY_BYTES", "1048576")),
            tick_seconds=float(_env("TICK_SECONDS", "5")),
            tick_concurrency=max(1, int(_env("TICK_CONCURRENCY", "1"))),
            audit_head_minutes=float(_env("AUDIT_HEAD_MINUTES", "10")),
            upload_quota_bytes=int(_env("UPLOAD_QUOTA_BYTES", str(4 * 1024 * 1024 * 1024))),
            job_backoff_seconds=float(_env("JOB_BACKOFF_SECONDS", "1")),
            job_backoff_cap_seconds=float(_env("JOB_BACKOFF_CAP_SECONDS", "600")),
            job_retry_hours=float(_env("JOB_RETRY_HOURS", "48")),
            job_lease_seconds=float(_env("JOB_LEASE_SECONDS", "300")),
            escrow_account=_env("ESCROW_ACCOUNT", cls.escrow_account),
            escrow_account_name=_env("ESCROW_ACCOUNT_NAME", cls.escrow_account_name),
            escrow_bank=_env("ESCROW_BANK", cls.escrow_bank),
            escrow_virtual_prefix=_env("ESCROW_VIRTUAL_PREFIX", cls.escrow_virtual_prefix),
            bank_notify_secret=_env("BANK_NOTIFY_SECRET", "") or _derived(secret, "bank-notify"),
            signin_free_attempts=int(_env("SIGNIN_FREE_ATTEMPTS", "5")),
            signin_address_free_attempts=int(_env("SIGNIN_ADDRESS_FREE_ATTEMPTS", "20")),
            signin_lockout_seconds=int(_env("SIGNIN_LOCKOUT_SECONDS", "60")),
            signin_max_lockout_seconds=int(_env("SIGNIN_MAX_LOCKOUT_SECONDS", "900")),
            signin_forget_seconds=int(_env("SIGNIN_FORGET_SECONDS", "3600")),
            env=_env("ENV", "development"),
            rehearsal=_env("REHEARSAL", "").strip().lower() in TRUE_WORDS,
            **argon2_from_env(),
        )


class Argon2Settings(TypedDict):
    """The argon2 password-hashing costs read from the environment, as keyword arguments of `Settings`."""

    argon2_time_cost: int
    argon2_memory_kib: int
    argon2_parallelism: int


def argon2_from_env() -> Argon2Settings:
    """The argon2 cost settings (`GGZY_ARGON2_TIME_COST`, `…_MEMORY_KIB`, `…_PARALLELISM`)."""
    return Argon2Settings(
        argon2_time_cost=int(_env("ARGON2_TIME_COST", "3")),
        argon2_memory_kib=int(_env("ARGON2_MEMORY_KIB", "65536")),
        argon2_parallelism=int(_env("ARGON2_PARALLELISM", "4")),
    )


def _persistent_secret(var_dir: Path) -> str:
    """A per-installation secret kept in `var/secret.key` (mode 0600) for the embedded default."""
    path = var_dir / "secret.key"
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def _derived(secret: str, purpose: str) -> str:
    """A secret for one purpose, derived from the process's secret key (used when none is configured)."""
    import hashlib
    import hmac

    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).hexdigest()
