"""docker-compose.scale.yml, read statically (no Docker engine here): PostgreSQL, bot replicas that split the
Discord shards and share the database, and Caddy proxying to every replica's HTTP port with /healthz checks."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from bot.config import Settings
from tests.conftest import ROOT

COMPOSE = ROOT / "docker-compose.scale.yml"
VARIABLE = re.compile(r"(?<!\$)\$\{(\w+)(?::?([-?])([^}]*))?\}")  # ${NAME}, ${NAME:-default}, ${NAME:?error}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${...} substitution, for the forms the file uses (a missing required variable fails)."""

    def value(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        if env.get(name):
            return env[name]
        assert kind != "?", f"{name} is required: {rest}"
        return rest if kind == "-" else ""

    return VARIABLE.sub(value, text).replace("$$", "$")


def bots(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose["services"]
    return {name: s for name, s in services.items() if re.fullmatch(r"bot-\d+", name)}


def caddyfile(compose: dict[str, Any]) -> str:
    caddy = compose["services"]["caddy"]
    (config,) = caddy["configs"]
    assert config["target"] == "/etc/caddy/Caddyfile"
    text: str = compose["configs"][config["source"]]["content"]
    return text


ENV = {"POSTGRES_PASSWORD": "0123abcd", "STUDYBOT_DOMAIN": "bot.example.com"}


def settings_of(bot: dict[str, Any]) -> Settings:
    """The Settings a replica starts with: its compose environment (the .env file aside)."""
    values: dict[str, Any] = {name: interpolate(str(value), ENV) for name, value in bot["environment"].items()}
    return Settings(_env_file=None, **values)


def test_it_stands_alone_every_reference_is_defined_and_every_variable_is_in_env_example(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert "include" not in compose and all("extends" not in s for s in services.values())
    for name, service in services.items():
        for needed in service.get("depends_on", {}):
            assert needed in services, (name, needed)
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith(("/", ".")) or source in compose["volumes"], (name, volume)
        for config in service.get("configs", []):
            assert config["source"] in compose["configs"]
        if "build" in service:
            assert (ROOT / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
    text = COMPOSE.read_text(encoding="utf-8")
    env_example = (ROOT / ".env.example").read_text(encoding="utf-8")
    used = {match.group(1) for match in VARIABLE.finditer(text)}
    assert {"POSTGRES_PASSWORD", "STUDYBOT_DOMAIN"} <= used
    assert [name for name in sorted(used) if not re.search(rf"(?m)^#? ?{name}=", env_example)] == []
    assert "-f docker-compose.yml" not in text.replace("no -f docker-compose.yml", "")


def test_postgres_is_healthchecked_and_keeps_its_data_in_a_volume(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    image, _, version = postgres["image"].partition(":")
    assert image == "postgres" and int(version.split("-")[0]) >= 15
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    assert "ports" not in postgres  # reached on the compose network only
    assert postgres["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")


def test_every_replica_shares_postgres_waits_for_it_healthy_and_serves_http_on_8080(compose: dict[str, Any]) -> None:
    replicas = bots(compose)
    assert len(replicas) >= 2
    postgres_env = {k: interpolate(str(v), ENV) for k, v in compose["services"]["postgres"]["environment"].items()}
    for name, bot in replicas.items():
        assert bot["depends_on"]["postgres"]["condition"] == "service_healthy", name
        assert bot["env_file"] == ".env" and bot["restart"] == "unless-stopped"
        assert bot["healthcheck"]["test"] == ["CMD", "studybot", "health"]
        settings = settings_of(bot)
        assert settings.db_is_postgres
        user, password, db = (postgres_env[k] for k in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"))
        assert settings.db == f"postgresql://{user}:{password}@postgres:5432/{db}"
        assert settings.listen_host_port == ("0.0.0.0", 8080)
        assert "8080" in [str(port) for port in bot["expose"]]


def test_the_replicas_split_the_discord_shards_between_them(compose: dict[str, Any]) -> None:
    shards: dict[str, tuple[int, ...]] = {}
    counts = set()
    for name, bot in bots(compose).items():
        settings = settings_of(bot)
        assert settings.discord_shard_count is not None and settings.discord_shard_ids is not None, name
        counts.add(settings.discord_shard_count)
        shards[name] = settings.discord_shard_ids
    (count,) = counts
    every = [shard for ids in shards.values() for shard in ids]
    assert sorted(every) == list(range(count))  # each shard run once, by one replica
    assert 0 in shards["bot-1"]


def test_caddy_serves_https_for_the_domain_and_balances_over_every_replica_checking_healthz(
    compose: dict[str, Any],
) -> None:
    caddy = compose["services"]["caddy"]
    assert caddy["image"].startswith("caddy:2")
    assert {"80:80", "443:443"} <= set(caddy["ports"])
    assert any(v.endswith(":/data") for v in caddy["volumes"])  # certificates survive a restart
    assert set(caddy["depends_on"]) == set(bots(compose))
    text = interpolate(caddyfile(compose), ENV)
    assert text.splitlines()[0] == "bot.example.com {"
    (upstreams,) = re.findall(r"reverse_proxy ([^{\n]+) \{", text)
    assert set(upstreams.split()) == {f"{name}:8080" for name in bots(compose)}
    options = dict(line.strip().split(None, 1) for line in text.splitlines() if line.strip().startswith("health_"))
    assert options["health_uri"] == "/healthz" and options["health_status"] == "200"
    assert re.search(r"handle /metrics\*? \{\s*respond 404", text)  # /metrics stays off the internet
    assert text.count("{") == text.count("}")


def test_the_copy_db_tool_moves_the_single_process_sqlite_volume_into_the_fleets_database(
    compose: dict[str, Any],
) -> None:
    tool = compose["services"]["copy-db"]
    assert tool["profiles"] == ["tools"] and tool["depends_on"]["postgres"]["condition"] == "service_healthy"
    single = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert single["services"]["bot"]["environment"]["STUDYBOT_DB"] == "/data/studybot.db"
    assert "studybot-data:/data" in single["services"]["bot"]["volumes"] and "studybot-data:/data" in tool["volumes"]
    command = [interpolate(str(part), ENV) for part in tool["command"]]
    bot_db = interpolate(str(bots(compose)["bot-1"]["environment"]["STUDYBOT_DB"]), ENV)
    assert command == ["studybot", "copy-db", "/data/studybot.db", bot_db]
    from bot.__main__ import build_parser

    assert build_parser().parse_args(command[1:]).command == "copy-db"
    # the same PostgreSQL volume as docker-compose.yml's postgres profile
    assert set(single["volumes"]) >= {"studybot-data", "studybot-postgres"}
    assert any(v.startswith("studybot-postgres:") for v in compose["services"]["postgres"]["volumes"])
