"""Deployment settings, read from the environment (prefix ``UNDERSIGNED_``) or a ``.env`` file."""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SECRET = "development-only-secret-key-do-not-deploy"


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="UNDERSIGNED_", env_file=".env", extra="ignore")

    environment: Environment = Environment.development
    base_url: str = "http://127.0.0.1:8000"
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'var' / 'undersigned.db'}"
    # A read replica of the database (PostgreSQL streaming replication) for the public reads that tolerate a
    # moment's lag: the tally report, the signature log's API and the scoreboard (docs/scaling.md). Writes,
    # sign-in and every page a reader acts on stay on database_url. Unset: everything reads database_url.
    database_replica_url: str | None = None
    # Connections per server process (PostgreSQL). Fewer connections than threads keeps the busiest
    # petition's counter row from queueing many transactions at once (see docs/benchmarks.md).
    database_pool_size: int = Field(default=4, ge=1, le=100)
    database_max_overflow: int = Field(default=0, ge=0, le=100)
    # How long a request waits for a free connection before it is answered 503.
    database_pool_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    # Worker threads per server process for synchronous handlers and dependencies (AnyIO's default is 40).
    # Nearly every handler uses a connection, so threads beyond the pool only wait for one, and compete for
    # the interpreter lock with those that have one (docs/benchmarks.md). Safe at any size: no request holds
    # a connection while it waits for a thread (app/core/routing.py).
    worker_threads: int = Field(default=4, ge=1, le=1000)
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET)
    # Keys that seal personal data at rest (addresses, names, mail), as `id:base64key,...`, the first sealing
    # new data (`undersigned keys generate`). Without them a key derived from the secret key is used; it stays
    # readable after keys are configured, until `undersigned keys rotate` has re-sealed everything.
    pii_keys: SecretStr | None = None
    organization_name: str = "Example Organization"
    # NoDecode: a comma-separated list in the environment, not JSON.
    allowed_email_domains: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["example.org"])

    # Mail: without an SMTP host, development and test keep mail in the development mailbox.
    mail_from: str = "Undersigned <no-reply@example.org>"
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = 10.0
    outbox_poll_seconds: float = 2.0
    outbox_max_attempts: int = 8
    # Run the outbox sender inside the web process (development); production runs `undersigned worker`.
    inprocess_worker: bool | None = None

    # Optional Redis for rate-limit counters shared between app servers.
    redis_url: str | None = None

    session_days: int = 14
    code_minutes: int = 15
    password_min_length: int = 10

    # Rate limits in the `limits` notation; keyed by a keyed hash of the address or account.
    # Wrong passwords and requests for codes count per (address, browser) under the first rule, and per address
    # under a much higher ceiling, so a stranger cannot lock the owner out (app/accounts/limits.py).
    rate_limit_sign_in: str = "10/minute;30/hour"
    rate_limit_sign_in_address: str = "100/hour;300/day"
    # Wrong passwords across all addresses: past this budget every sign-in waits sign_in_slowdown_seconds.
    sign_in_failure_budget: str = "100/minute"
    sign_in_slowdown_seconds: float = 2.0
    rate_limit_sign_up: str = "5/hour"
    rate_limit_code_request: str = "5/15minutes;20/day"
    rate_limit_code_request_address: str = "30/hour;100/day"
    rate_limit_code_check: str = "10/15minutes"
    rate_limit_sign: str = "20/minute;300/hour"
    rate_limit_comment: str = "6/minute;60/hour"
    # Posters drawn (not served from the copies each process keeps) for all readers together: the route reads no
    # account, and a drawing costs about half a second of a core, so this bounds it to a sixth of one.
    rate_limit_poster: str = "20/minute;300/hour"
    # A petition's signatures in the last hour above this many times its hourly average of the day before
    # (and above velocity_minimum) are flagged to moderators.
    velocity_factor: float = 5.0
    velocity_minimum: int = 50

    # Petitions.
    sponsors_required: int = Field(default=3, ge=0, le=50)
    moderation_enabled: bool = True
    moderation_lock_minutes: int = 15
    # The response threshold is an absolute count, or a percentage of the eligible members when both
    # `response_threshold_percent` and `eligible_members` are set (the larger of the two applies).
    response_threshold: int = Field(default=100, ge=1)
    response_threshold_percent: float | None = Field(default=None, gt=0, le=100)
    escalation_threshold: int = Field(default=1000, ge=1)
    eligible_members: int | None = Field(default=None, ge=1)
    response_days: int = 14
    updates_per_week: int = 3
    # Days after closing when signers' names and groups are erased (the counts remain).
    retention_days: int = Field(default=180, ge=1)
    # Reports never show a department or location with fewer signers than this (app/reports/suppression.py).
    min_group_size: int = Field(default=5, ge=1, le=1000)

    # Comments: authors may fix a comment quietly for this long ("edited"); later edits keep a public history.
    comment_edit_minutes: int = Field(default=15, ge=0, le=1440)
    # A comment flagged by this many people is collapsed until a moderator looks at it.
    comment_collapse_flags: int = Field(default=3, ge=1, le=100)
    # How often an open discussion page asks for new comments (JavaScript only).
    comment_poll_seconds: float = Field(default=15.0, ge=0.5, le=3600)
    # How often an open petition's page asks for its tally (JavaScript only).
    tally_poll_seconds: float = Field(default=15.0, ge=0.5, le=3600)
    # Signed-out readers of the busiest pages (a petition, its discussion, its tally) share one response per
    # server process for `shared_page_seconds`, and every reader shares the public tally report, which counts
    # every signature, for `tally_cache_seconds` (docs/deploy.md). Unset: 5 s and 60 s in production, off
    # elsewhere, where tests and developers expect to read what they just wrote. 0 turns either off.
    shared_page_seconds: float | None = Field(default=None, ge=0, le=300)
    tally_cache_seconds: float | None = Field(default=None, ge=0, le=3600)

    # Anonymous signing (RFC 9474 blind signatures): the size of each petition's issuing key, and how often
    # accepted anonymous signatures are written, shuffled, in one batch (0: at once, for tests).
    blind_key_bits: int = Field(default=3072, ge=1024, le=8192)
    anonymous_batch_seconds: float = Field(default=300.0, ge=0, le=86400)
    # A petition's anonymous entries are published once at least min_group_size are waiting; a smaller group
    # waits at most this long (counted in whole hours), then goes out with a public note on the timeline.
    anonymous_max_delay_seconds: float = Field(default=6 * 3600.0, ge=0, le=7 * 86400)
    # A server that stops writes what it holds that may go out, waiting at most this long for the database (another
    # transaction may hold SQLite's write lock, or a PostgreSQL row): past it, it stops without that last batch.
    last_batch_seconds: float = Field(default=10.0, gt=0, le=600)

    # Witnesses of the signature logs (independent parties running `undersigned witness`), as verifier keys
    # name+keyid+base64key, comma-separated: their cosignatures are accepted and shown.
    log_witnesses: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Their C2SP tlog-witness addresses (the prefix before /add-checkpoint), comma-separated: the worker asks
    # each to cosign every public petition's newest checkpoint once the hour it was made in is over (a witness's
    # time is public to the second: app/log/witness.py), and retries a failure the next round.
    log_witness_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # The language of pages and mail, and how they write dates and numbers: a catalog at
    # <locale_dir>/<locale>/LC_MESSAGES/messages.mo (`make messages` extracts the strings); English needs none.
    locale: str = "en"
    locale_dir: Path = PROJECT_ROOT / "app" / "locale"

    templates_dir: Path = PROJECT_ROOT / "templates"
    static_dir: Path = PROJECT_ROOT / "app" / "static"

    @field_validator("locale")
    @classmethod
    def _check_locale(cls, value: str) -> str:
        from babel import Locale, UnknownLocaleError

        try:
            Locale.parse(value)
        except (ValueError, UnknownLocaleError) as error:
            raise ValueError(f"UNDERSIGNED_LOCALE {value!r} is not a locale Babel knows") from error
        return value

    @field_validator("log_witnesses", "log_witness_urls", mode="before")
    @classmethod
    def _split_witnesses(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("log_witness_urls")
    @classmethod
    def _check_witness_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
                raise ValueError(f"UNDERSIGNED_LOG_WITNESS_URLS: {url!r} is not an http(s) address")
        return value

    @field_validator("allowed_email_domains", mode="before")
    @classmethod
    def _split_domains(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part for part in value.split(",")]
        if isinstance(value, list):
            return [str(part).strip().lower().lstrip("@") for part in value if str(part).strip()]
        return value

    @field_validator("pii_keys")
    @classmethod
    def _check_pii_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().strip():
            from app.core.crypto import parse_keys  # the format lives with the code that reads it

            parse_keys(value.get_secret_value())
            return value
        return None

    @model_validator(mode="after")
    def _max_delay_covers_a_batch(self) -> Settings:
        if self.anonymous_max_delay_seconds < self.anonymous_batch_seconds:
            raise ValueError(
                "UNDERSIGNED_ANONYMOUS_MAX_DELAY_SECONDS must be at least "
                "UNDERSIGNED_ANONYMOUS_BATCH_SECONDS: a group cannot wait less than one batch"
            )
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.environment is Environment.production:
            secret = self.secret_key.get_secret_value()
            if secret == DEFAULT_SECRET or len(secret) < 32:
                raise ValueError(
                    "UNDERSIGNED_SECRET_KEY must be set to a random value of at least 32 characters in production"
                )
            if self.blind_key_bits < 3072:
                raise ValueError("UNDERSIGNED_BLIND_KEY_BITS must be at least 3072 in production")
            if self.anonymous_batch_seconds < 60:
                raise ValueError(
                    "UNDERSIGNED_ANONYMOUS_BATCH_SECONDS must be at least 60 in production: a batch of "
                    "one would date each anonymous signature"
                )
            if not self.smtp_host:
                raise ValueError("UNDERSIGNED_SMTP_HOST must be set in production: mail cannot stay in a mailbox page")
        return self

    @property
    def dev_tools_enabled(self) -> bool:
        """The development mailbox: never in production, and never once real mail goes out over SMTP."""
        return self.environment is not Environment.production and not self.smtp_host

    @property
    def run_inprocess_worker(self) -> bool:
        if self.inprocess_worker is not None:
            return self.inprocess_worker
        return self.environment is Environment.development

    @property
    def shared_page_ttl(self) -> float:
        if self.shared_page_seconds is not None:
            return self.shared_page_seconds
        return 5.0 if self.environment is Environment.production else 0.0

    @property
    def tally_cache_ttl(self) -> float:
        if self.tally_cache_seconds is not None:
            return self.tally_cache_seconds
        return 60.0 if self.environment is Environment.production else 0.0

    @property
    def secure_cookies(self) -> bool:
        return self.environment is Environment.production

    @cached_property
    def default_email_domain(self) -> str:
        return self.allowed_email_domains[0] if self.allowed_email_domains else "example.org"
