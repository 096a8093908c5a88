"""Settings come from the environment, and production refuses to start with unsafe ones."""

import pytest
from pydantic import ValidationError

from app.core.settings import DEFAULT_SECRET, Settings
from app.main import create_app


def test_production_refuses_the_default_secret() -> None:
    with pytest.raises(ValidationError, match="UNDERSIGNED_SECRET_KEY"):
        Settings(environment="production", smtp_host="mail.example.org", secret_key=DEFAULT_SECRET)
    with pytest.raises(ValidationError, match="UNDERSIGNED_SECRET_KEY"):
        Settings(environment="production", smtp_host="mail.example.org", secret_key="short")


def test_production_refuses_to_keep_mail_in_a_mailbox_page() -> None:
    with pytest.raises(ValidationError, match="UNDERSIGNED_SMTP_HOST"):
        Settings(environment="production", secret_key="x" * 40)


def test_production_with_real_settings_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNDERSIGNED_ENVIRONMENT", "production")
    monkeypatch.setenv("UNDERSIGNED_SECRET_KEY", "k" * 48)
    monkeypatch.setenv("UNDERSIGNED_SMTP_HOST", "mail.example.org")
    monkeypatch.setenv("UNDERSIGNED_ALLOWED_EMAIL_DOMAINS", "Example.org, @corp.example.com ,")
    settings = Settings()
    assert settings.allowed_email_domains == ["example.org", "corp.example.com"]
    assert settings.secure_cookies and not settings.dev_tools_enabled and not settings.run_inprocess_worker
    assert create_app(settings).state.settings is settings


def test_development_defaults_run_without_any_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("UNDERSIGNED_ENVIRONMENT", "UNDERSIGNED_SECRET_KEY", "UNDERSIGNED_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)
    assert settings.environment == "development" and settings.run_inprocess_worker
    assert settings.database_url.startswith("sqlite:///") and settings.database_url.endswith("var/undersigned.db")


def test_production_refuses_anonymous_batches_too_small_to_hide_anyone() -> None:
    with pytest.raises(ValueError, match="ANONYMOUS_BATCH_SECONDS"):
        Settings(environment="production", smtp_host="mail.example.org", secret_key="x" * 40, anonymous_batch_seconds=0)
