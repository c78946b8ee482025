import os
import subprocess
import sys

import pytest

from parley.settings import Secret, Settings, SettingsError


def test_from_env_casts_and_ignores_other_variables():
    s = Settings.from_env({"PARLEY_NODE_PORT": "9000", "PARLEY_RATE_PER_S": "2.5", "PARLEY_LOG_JSON": "true",
                           "PARLEY_SECRET": "hunter2" * 5, "HOME": "/root"})
    assert (s.node_port, s.rate_per_s, s.log_json) == (9000, 2.5, True)
    assert s.secret.reveal() == "hunter2" * 5
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.secret)


def test_bad_values_name_the_variable():
    with pytest.raises(SettingsError, match="PARLEY_NODE_PORT"):
        Settings.from_env({"PARLEY_NODE_PORT": "eighty"})


def test_as_env_round_trips():
    s = Settings(secret=Secret("k" * 32), node_port=1234, log_json=True)
    assert Settings.from_env(s.as_env()) == s


@pytest.mark.parametrize("name", ["cassandra_concurrency", "archiver_concurrency", "cassandra_bucket_s"])
def test_values_that_would_hang_or_divide_by_zero_are_refused(name):
    with pytest.raises(SettingsError, match=f"PARLEY_{name.upper()}"):
        Settings.from_env({f"PARLEY_{name.upper()}": "0"})


def test_a_short_secret_is_refused_at_start():
    with pytest.raises(SettingsError, match="PARLEY_SECRET is 31 bytes; it must be at least 32") as info:
        Settings.from_env({"PARLEY_SECRET": "s" * 31})
    assert info.value.code == "bad_setting" and "s" * 31 not in str(info.value)
    assert Settings.from_env({"PARLEY_SECRET": "s" * 32}).secret.reveal() == "s" * 32
    assert Settings(secret=Secret("é" * 16)).secret  # bytes, not characters


def test_a_process_with_a_short_secret_does_not_start():
    env = {**os.environ, "PARLEY_SECRET": "too-short"}
    done = subprocess.run([sys.executable, "-m", "parley", "api"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "PARLEY_SECRET is 9 bytes; it must be at least 32" in done.stderr


def test_frame_rates_are_scaled_and_hash_concurrency_may_be_automatic():
    rates = Settings(limits_scale=10.0, sync_rate_per_s=0.5, sync_rate_burst=5).frame_rates()
    assert (rates.rates["sync"].per_s, rates.rates["sync"].burst) == (5.0, 50.0)
    assert set(rates.rates) == {"sync", "presence", "read", "typing", "cheap"}
    assert Settings(hash_concurrency=0).hash_concurrency == 0  # 2 x CPU cores
    with pytest.raises(SettingsError, match="PARLEY_HASH_CONCURRENCY"):
        Settings(hash_concurrency=-1)


@pytest.mark.parametrize("raw", ["-0.001", "0.06"])
def test_the_write_gap_is_from_0_to_50_ms(raw):
    assert Settings().write_gap_s == 0.005  # group deliveries only (ADR 0056)
    assert Settings.from_env({"PARLEY_WRITE_GAP_S": "0"}).write_gap_s == 0  # off: every loop turn
    with pytest.raises(SettingsError, match="PARLEY_WRITE_GAP_S"):
        Settings.from_env({"PARLEY_WRITE_GAP_S": raw})


@pytest.mark.parametrize("raw", ["-0.01", "1.5"])
def test_the_receipt_gathering_window_is_from_0_to_1_s(raw):
    assert Settings.from_env({"PARLEY_RECEIPT_GATHER_S": "0"}).receipt_gather_s == 0  # off: one message each
    with pytest.raises(SettingsError, match="PARLEY_RECEIPT_GATHER_S"):
        Settings.from_env({"PARLEY_RECEIPT_GATHER_S": raw})


@pytest.mark.parametrize("raw", ["0", "46"])
def test_a_cassandra_batch_stays_under_its_refusal_at_50_kib(raw):
    assert Settings.from_env({"PARLEY_CASSANDRA_BATCH_KIB": "5"}).cassandra_batch_kib == 5  # Cassandra's warning size
    with pytest.raises(SettingsError, match="PARLEY_CASSANDRA_BATCH_KIB"):
        Settings.from_env({"PARLEY_CASSANDRA_BATCH_KIB": raw})
