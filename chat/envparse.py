"""Values from text: the environment, and settings given as strings, parsed or refused by name."""

from __future__ import annotations

import ipaddress
import os

from django.core.exceptions import ImproperlyConfigured

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_bool(name: str, raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    value = str(raw).strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r}: use true or false")


def parse_number(name: str, raw: object, *, minimum: float = 0, maximum: float | None = None) -> float:
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number") from exc
    if value < minimum or (maximum is not None and value > maximum):
        raise ImproperlyConfigured(f"{name}={raw!r} must lie between {minimum} and {maximum}")
    return value


def split_list(raw: object) -> list[str]:
    parts = raw.split(",") if isinstance(raw, str) else list(raw)  # type: ignore[call-overload]
    return [str(p).strip() for p in parts if str(p).strip()]


def parse_networks(name: str, raw: object) -> list[Network]:
    try:
        return [ipaddress.ip_network(part, strict=False) for part in split_list(raw)]
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r}: {exc}") from exc


def parse_sentinel(address: str) -> tuple[str, int]:
    host, _, port = address.strip().rpartition(":")
    if not host or not port.isdigit():
        raise ImproperlyConfigured(f"REDIS_SENTINELS entry {address!r}: write host:port (Sentinel's port is 26379)")
    return host, int(port)


def env_str(name: str, default: str) -> str:
    return os.environ.get(name) or default


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    return default if not raw else parse_bool(name, raw)


def env_number(name: str, default: float, *, minimum: float = 0, maximum: float | None = None) -> float:
    raw = os.environ.get(name)
    return default if not raw else parse_number(name, raw, minimum=minimum, maximum=maximum)


def env_int(name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    return int(env_number(name, default, minimum=minimum, maximum=maximum))


def parse_budget(name: str, raw: object) -> tuple[float, float]:
    rate, _, burst = str(raw).partition("/")
    try:
        parsed = float(rate), float(burst)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: write rate/burst, e.g. 5/20") from None
    if parsed[0] <= 0 or parsed[1] < 1:
        raise ImproperlyConfigured(f"{name}={raw!r}: the rate must be positive and the burst at least 1")
    return parsed


def parse_choice(name: str, raw: object, allowed: tuple[str, ...]) -> str:
    if raw not in allowed:
        raise ImproperlyConfigured(f"{name}={raw!r}: use one of {', '.join(allowed)}")
    return str(raw)
