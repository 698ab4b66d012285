"""Node configuration: the one YAML file an edge node reads at start.

The schema is strict (unknown keys are errors, so a typo fails fast instead of being
silently ignored) and every error names the field that is wrong. Relative paths are
resolved against the config file's folder, so a node folder can be moved as a whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from firmware_config.camera import CameraConfig, QuietHours
from mqtt_contract import (
    DEFAULT_QUIET_HOURS,
    DEFAULT_TIMEZONE,
    Segment,
    check_timezone,
    decode_public_key,
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Location(Strict):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class MqttSettings(Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    """Defaults to the node id: one broker account per node."""
    password: str | None = None
    password_file: Path | None = None
    keepalive_s: int = Field(default=30, ge=5, le=600)
    tls: bool = True
    """TLS 1.2+ to the broker, its certificate and host name checked (docs/security.md)."""
    ca_file: Path | None = None
    """The fleet CA that signed the broker's certificate (None: the system's CAs)."""
    cert_file: Path | None = None
    key_file: Path | None = None
    """The node's client certificate and key (the broker requires one)."""

    def read_password(self) -> str | None:
        if self.password is not None:
            return self.password
        if self.password_file is not None:
            return self.password_file.read_text().strip()
        return None


class AudioSettings(Strict):
    output: Literal["file", "alsa", "ffplay"] = "file"
    """file: WAV sink (tests, simulation); alsa: aplay to a sound card; ffplay: any desktop."""
    file_dir: Path = Path("sink")
    device: str = "default"
    volume: int = Field(default=80, ge=0, le=100)
    realtime: bool = True
    """A file sink waits out the clip's duration, so preemption behaves as on a Pi."""


class AmplifierSettings(Strict):
    gpio_pin: int | None = Field(default=None, ge=0, le=40)
    """BCM pin of the amplifier relay; None = no relay (always-on amp or simulation)."""
    warmup_s: float = Field(default=0.5, ge=0, le=10)
    active_high: bool = True


class NodeConfig(Strict):
    node_id: Segment
    commune: Segment
    name: str = ""
    zones: list[Segment] = Field(default_factory=list)
    groups: list[Segment] = Field(default_factory=list)
    location: Location | None = None
    timezone: str = DEFAULT_TIMEZONE
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    audio: AudioSettings = Field(default_factory=AudioSettings)
    amplifier: AmplifierSettings = Field(default_factory=AmplifierSettings)
    quiet_hours: QuietHours = Field(
        default_factory=lambda: QuietHours(**DEFAULT_QUIET_HOURS.model_dump()))
    """Default for the node until its plan brings its zone's quiet hours."""
    storage_dir: Path = Path("data")
    telemetry_interval_s: float = Field(default=30, gt=0, le=3600)
    prepare_ahead_s: float = Field(default=2.0, ge=0.1, le=60)
    """Decode the clip and open the device this long before the deadline."""
    media_wait_s: float = Field(default=5.0, ge=0.5, le=600)
    """How long to wait for broadcast chunks before asking the controller for a resend."""
    cameras: list[CameraConfig] = Field(default_factory=list)
    trusted_keys: list[str] = Field(default_factory=list, max_length=8)
    """The controller's Ed25519 public keys (base64 of 32 bytes) whose signed plans and
    commands the node takes: the current key, plus the next one during a rotation.
    Written by provisioning; empty means the node refuses every plan and command."""

    @field_validator("trusted_keys")
    @classmethod
    def _public_keys(cls, value: list[str]) -> list[str]:
        for key in value:
            decode_public_key(key)
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return check_timezone(value)

    @property
    def username(self) -> str:
        return self.mqtt.username or self.node_id

    def resolve_paths(self, base: Path) -> NodeConfig:
        """Make relative paths absolute against ``base`` (the config file's folder)."""

        def fix(p: Path | None) -> Path | None:
            return p if p is None or p.is_absolute() else (base / p).resolve()

        copy = self.model_copy(deep=True)
        copy.storage_dir = fix(copy.storage_dir)  # type: ignore[assignment]
        copy.audio.file_dir = fix(copy.audio.file_dir)  # type: ignore[assignment]
        copy.mqtt.password_file = fix(copy.mqtt.password_file)
        copy.mqtt.ca_file = fix(copy.mqtt.ca_file)
        copy.mqtt.cert_file = fix(copy.mqtt.cert_file)
        copy.mqtt.key_file = fix(copy.mqtt.key_file)
        for cam in copy.cameras:
            if isinstance(cam.source, str) and "://" not in cam.source:
                cam.source = str(fix(Path(cam.source)))
            cam.helmet.model = fix(cam.helmet.model)
            for reminder in cam.reminders.values():
                reminder.clip = fix(reminder.clip)
        return copy


class ConfigError(ValueError):
    """A node config that cannot be used; the message names the file and the field."""


def format_validation_error(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid node configuration"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)


def parse_node_config(data: Any, source: str = "<config>", base: Path | None = None) -> NodeConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of settings, got {type(data).__name__}")
    try:
        config = NodeConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None
    return config.resolve_paths(base) if base else config


def load_node_config(path: Path) -> NodeConfig:
    """Read and validate a node YAML file; raise ConfigError naming the bad field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_node_config(data, str(path), path.parent.resolve())
