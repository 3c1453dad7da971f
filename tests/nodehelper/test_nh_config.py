import pytest

from nodehelper.config import Config


def test_bounds_default_and_come_from_the_environment() -> None:
    config = Config.from_env({"NODE_IP": "10.0.0.1"})
    assert (config.max_archive_bytes, config.min_free_bytes, config.max_workers) == (64 << 30, 1 << 30, 16)
    config = Config.from_env(
        {"NODE_IP": "10.0.0.1", "PM_MAX_ARCHIVE_BYTES": "1048576", "PM_MIN_FREE_BYTES": "0", "PM_MAX_WORKERS": "4"}
    )
    assert (config.max_archive_bytes, config.min_free_bytes, config.max_workers) == (1 << 20, 0, 4)


@pytest.mark.parametrize(
    "name, value",
    [("PM_MAX_WORKERS", "0"), ("PM_MAX_WORKERS", "-1"), ("PM_MAX_ARCHIVE_BYTES", "64Gi"), ("PM_MIN_FREE_BYTES", "1.5")],
)
def test_a_bad_bound_stops_the_start_with_its_name(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=f"{name}='{value}'"):
        Config.from_env({"NODE_IP": "10.0.0.1", name: value})


def test_connection_limits_come_from_the_environment() -> None:
    env = {
        "NODE_IP": "10.0.0.1",
        "PM_MAX_CONNECTIONS": "9",
        "PM_MAX_CONNECTIONS_PER_PEER": "3",
        "PM_MAX_UNAUTHENTICATED": "4",
        "PM_HANDSHAKE_TIMEOUT_SECONDS": "2",
        "PM_HEADER_TIMEOUT_SECONDS": "7",
    }
    limits = Config.from_env(env).connection_limits
    assert (limits.total, limits.per_peer, limits.unauthenticated) == (9, 3, 4)
    assert (limits.handshake_seconds, limits.header_seconds) == (2, 7)
    with pytest.raises(ValueError, match="PM_HEADER_TIMEOUT_SECONDS='0'"):
        Config.from_env({"NODE_IP": "10.0.0.1", "PM_HEADER_TIMEOUT_SECONDS": "0"})


def test_the_free_space_percentage_comes_from_the_environment() -> None:
    assert Config.from_env({"NODE_IP": "10.0.0.1"}).min_free_percent == 15
    assert Config.from_env({"NODE_IP": "10.0.0.1", "PM_MIN_FREE_PERCENT": "2"}).min_free_percent == 2
    with pytest.raises(ValueError, match="PM_MIN_FREE_PERCENT='15%'"):
        Config.from_env({"NODE_IP": "10.0.0.1", "PM_MIN_FREE_PERCENT": "15%"})
