"""Controller settings, from ``LOAXA_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

import ssl
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mqtt_contract import DEFAULT_TIMEZONE, LIVE_MAX_BITRATE, LIVE_SAMPLE_RATES, check_timezone


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOAXA_", env_file=".env", extra="ignore")

    data_dir: Path = Path("data")
    database_url: str | None = None
    """SQLAlchemy URL; default: SQLite (WAL) at ``{data_dir}/loaxa.sqlite3``."""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(default=1883, ge=1, le=65535)
    mqtt_username: str = "loaxa-controller"
    mqtt_password: str | None = None
    mqtt_password_file: Path | None = None
    mqtt_client_id: str = Field(default="loaxa-controller-1", pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    """Bound to the account by the broker: each replica has its own account and id. It
    also names the replica in its signatures (``Signature.replica``): a topic segment."""
    mqtt_ca_file: Path | None = None
    """The fleet CA (``fleet/controller/ca.crt``): with it the link is TLS 1.2+ and the
    broker's certificate and name are checked. Without it only a plain listener on the
    broker's own machine (127.0.0.1) can be used."""
    mqtt_cert_file: Path | None = None
    mqtt_key_file: Path | None = None
    """The controller's client certificate and key (the broker's TLS listener wants one)."""
    mqtt_share_group: str = "loaxa-controllers"
    """MQTT 5 shared-subscription group: controller replicas split alerts, playback
    reports, heartbeats and media requests."""
    lease_ttl_s: float = Field(default=6, ge=2, le=600)
    """The plan-compiler lease (controller/services/leadership.py) lasts this long and is
    renewed every quarter of it: a replica killed outright is replaced within this time
    plus one renewal (7.5 s at the default; the target is 10 s)."""

    fleet_dir: Path | None = None
    """Folder of node YAML files to register at start (names, zones, coordinates)."""
    default_commune: str = "xa-demo"
    timezone: str = DEFAULT_TIMEZONE
    """The commune's wall clock (IANA name): local days, pages, new schedules' default."""
    plan_horizon_h: float = Field(default=48, gt=0, le=24 * 14)
    start_lead_s: float = Field(default=8, ge=1, le=600)
    """"Play now" means now + this lead, so every node has the audio and starts together."""
    plan_refresh_s: float = Field(default=900, ge=10)
    """How often plans are recompiled to roll the horizon forward."""
    live_latency_ms: int = Field(default=1200, ge=200, le=5000)
    """Every node plays a live frame this long after its capture (docs/live.md): the
    frame's own length, the link's delay and its jitter must fit inside."""
    live_frame_ms: int = Field(default=400, ge=120, le=1000, multiple_of=40)
    live_bitrate: int = Field(default=24_000, ge=6_000, le=LIVE_MAX_BITRATE)
    """Opus bit rate to nodes (mono, bit/s)."""
    live_sample_rate: int = Field(default=16_000)
    """Opus's rate to nodes: 16 kHz carries speech and radio on horn speakers."""

    @field_validator("live_sample_rate")
    @classmethod
    def _opus_rate(cls, value: int) -> int:
        if value not in LIVE_SAMPLE_RATES:
            raise ValueError(f"one of {LIVE_SAMPLE_RATES}")
        return value

    live_silence_s: float = Field(default=4.0, ge=1.0, le=60.0)
    """A node that hears no frame for this long ends the session by itself."""

    offline_alert_min: float = Field(default=10, gt=0, le=24 * 60)
    """A node offline longer than this stands out on the dashboard, and the officer's and
    admin's pages ring and notify once."""
    online_sample_s: float = Field(default=300, ge=5, le=3600)
    """How often the count of nodes online is recorded (the dashboard's chart)."""
    online_sample_days: int = Field(default=30, ge=1, le=400)
    """How long those counts are kept (older ones are deleted as new ones are written)."""

    upstream_emergency: Literal["draft", "air"] = "draft"
    """What an ``emergency`` bulletin from the provincial source information system
    (``POST /api/upstream/bulletins``) becomes: a draft that a leader sends (default),
    or ``air``: on the air at once on every node of its communes (audited as the
    upstream account's). Other levels always land as drafts."""

    signing_key_dir: Path | None = None
    """The Ed25519 key folder that signs plans and commands (controller/signing.py);
    default ``{data_dir}/secrets/signing``. Outside the database, mode 0700/0600."""

    secret_key: str | None = None
    """Signs access tokens; default: a random key kept in ``{data_dir}/secret_key``."""
    token_ttl_h: float = Field(default=12, gt=0, le=24 * 30)
    admin_username: str = "admin"
    admin_password: str | None = None
    """If set and there are no users yet, this admin account is created at start."""
    login_attempts: int = Field(default=5, ge=1)
    login_window_s: float = Field(default=300, gt=0)

    trusted_proxies: list[str] = Field(default_factory=list)
    """Addresses (or networks) of the reverse proxies in front of the controller, e.g.
    ``["127.0.0.1"]``: only from these are ``X-Forwarded-For`` / ``X-Forwarded-Proto``
    believed (client address for the login limit, https for Secure cookies). Default:
    none, so no header can pose as another client."""
    tls_certfile: Path | None = None
    """With ``tls_keyfile``: the controller serves HTTPS itself (PEM, chain first)."""
    tls_keyfile: Path | None = None

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ValueError("set both LOAXA_TLS_CERTFILE and LOAXA_TLS_KEYFILE, or neither")
        return self

    @property
    def serves_https(self) -> bool:
        return self.tls_certfile is not None

    _timezone = field_validator("timezone")(check_timezone)

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.data_dir / 'loaxa.sqlite3').resolve()}"

    def read_mqtt_password(self) -> str | None:
        if self.mqtt_password is not None:
            return self.mqtt_password
        if self.mqtt_password_file is not None:
            return self.mqtt_password_file.read_text().strip()
        return None

    def mqtt_tls_context(self) -> ssl.SSLContext | None:
        """The controller's TLS settings for the broker, or None for a plain link."""
        if self.mqtt_ca_file is None:
            return None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_verify_locations(cafile=str(self.mqtt_ca_file))
        ctx.check_hostname, ctx.verify_mode = True, ssl.CERT_REQUIRED
        if self.mqtt_cert_file and self.mqtt_key_file:
            ctx.load_cert_chain(str(self.mqtt_cert_file), str(self.mqtt_key_file))
        return ctx

    @property
    def signing_dir(self) -> Path:
        return self.signing_key_dir or self.data_dir / "secrets" / "signing"

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"
