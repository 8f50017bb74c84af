"""Service settings, from the environment (`NONSITE_*`).

Development (the embedded default) runs with a known admin password and demo accounts so that
a newcomer can log in; any other environment refuses to start on a default secret.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT_PASSWORD = "nonsite-dev"


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NONSITE_", extra="ignore")

    environment: Literal["development", "production"] = Field(
        "development",
        title="Environment",
        description="development seeds demo accounts with a known password; production refuses default secrets",
    )
    admin_password: SecretStr = Field(
        SecretStr(DEVELOPMENT_PASSWORD),
        title="Admin password",
        description="Password of the `admin` account, set when the account is first made",
    )
    session_hours: float = Field(8.0, gt=0, le=24 * 14, description="Hours an officer's login lasts")
    device_token_days: int = Field(365, ge=1, le=3650, description="Days a camera device token lasts")
    party_code_days: int = Field(30, ge=1, le=365, description="Days a party's case access code lasts")
    party_session_hours: float = Field(2.0, gt=0, le=24, description="Hours a party's portal login lasts")
    max_upload_bytes: int = Field(8 << 20, ge=1024, le=1 << 30, description="Largest upload accepted, in bytes")
    field_upload_max_bytes: int = Field(
        512 << 20, ge=1024, le=16 << 30, description="Largest photo, video or audio file an officer uploads, in bytes"
    )
    secure_cookies: bool = Field(False, description="Mark the session cookie Secure (serve over HTTPS)")
    login_attempts: int = Field(5, ge=1, le=100, description="Failed logins of one user before a pause")
    login_pause_s: float = Field(60.0, ge=0, le=3600, description="Seconds a user waits after too many failures")

    @model_validator(mode="after")
    def _no_default_secrets_outside_development(self) -> ApiSettings:
        if self.environment != "development" and self.admin_password.get_secret_value() == DEVELOPMENT_PASSWORD:
            raise ValueError(
                f"NONSITE_ADMIN_PASSWORD is the development default; set a secret of your own in {self.environment}"
            )
        if self.environment != "development" and len(self.admin_password.get_secret_value()) < 12:
            raise ValueError("NONSITE_ADMIN_PASSWORD must have at least 12 characters outside development")
        return self

    @property
    def development(self) -> bool:
        return self.environment == "development"
