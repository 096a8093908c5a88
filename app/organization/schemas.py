"""The admin's rules form."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field, ValidationInfo, field_validator

DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})")


class RulesForm(BaseModel):
    allowed_email_domains: str = Field(min_length=1, max_length=1000)
    response_threshold: int = Field(ge=1, le=10_000_000)
    escalation_threshold: int = Field(ge=2, le=10_000_000)
    response_days: int = Field(ge=1, le=365)
    sponsors_required: int = Field(ge=0, le=50)

    @field_validator("allowed_email_domains")
    @classmethod
    def _domains(cls, value: str) -> str:
        domains = [part.strip().lower().lstrip("@") for part in re.split(r"[,\s]+", value) if part.strip()]
        if not domains:
            raise ValueError("Name at least one domain, like example.org.")
        for domain in domains:
            if not DOMAIN.fullmatch(domain):
                raise ValueError(f"“{domain[:60]}” is not a domain; write domains like example.org.")
        return ",".join(dict.fromkeys(domains))

    @field_validator("escalation_threshold")
    @classmethod
    def _escalation_above_response(cls, value: int, info: ValidationInfo) -> int:
        response = info.data.get("response_threshold")
        if response is not None and value <= response:
            raise ValueError("Make it larger than the response threshold.")
        return value

    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(self.allowed_email_domains.split(","))


class RulesRead(BaseModel):
    allowed_email_domains: list[str]
    response_threshold: int
    escalation_threshold: int
    response_days: int
    sponsors_required: int
