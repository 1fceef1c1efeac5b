"""Where the worker and the CLI connect: the `temporal` CLI's own settings (envconfig profiles
and TEMPORAL_* variables), each overridden by a BILLING_TEMPORAL_* setting; and what a failure
looks like when it leaves this process."""

import pytest
from temporalio.api.failure.v1 import Failure
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.exceptions import ApplicationError

from workers.runtime.config import Settings
from workers.runtime.temporal import DATA_CONVERTER, TemporalConfigError, connect, connect_options

DEAD = "127.0.0.1:1"  # nothing listens on port 1


@pytest.fixture
def no_billing_temporal_env(monkeypatch):
    for name in Settings.model_fields:
        if name.startswith("temporal_"):
            monkeypatch.delenv(f"BILLING_{name.upper()}", raising=False)
    for name in ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY", "TEMPORAL_PROFILE", "TEMPORAL_TLS"):
        monkeypatch.delenv(name, raising=False)


def profile_file(tmp_path, address: str, namespace: str = "default") -> str:
    path = tmp_path / "temporal.toml"
    path.write_text(f'[profile.default]\naddress = "{address}"\nnamespace = "{namespace}"\n\n'
                    f'[profile.cloud]\naddress = "billing.abc12.tmprl.cloud:7233"\nnamespace = "billing.abc12"\n'
                    f'api_key = "secret-key"\n')
    return str(path)


async def test_a_profile_file_with_an_address_is_honoured(ts_env, tmp_path, monkeypatch, no_billing_temporal_env):
    address = ts_env.client.service_client.config.target_host
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", profile_file(tmp_path, address))
    client = await connect(Settings())
    assert client.service_client.config.target_host == address
    assert await client.workflow_service.get_system_info(GetSystemInfoRequest())  # answered


async def test_a_billing_setting_overrides_the_profile(ts_env, tmp_path, monkeypatch, no_billing_temporal_env):
    address = ts_env.client.service_client.config.target_host
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", profile_file(tmp_path, DEAD))
    monkeypatch.setenv("BILLING_TEMPORAL_ADDRESS", address)
    client = await connect(Settings())
    assert client.service_client.config.target_host == address
    assert await client.workflow_service.get_system_info(GetSystemInfoRequest())  # answered


def test_a_named_profile_and_temporal_variables_are_read_and_billing_settings_win(tmp_path,
                                                                                 no_billing_temporal_env):
    environ = {"TEMPORAL_CONFIG_FILE": profile_file(tmp_path, DEAD), "TEMPORAL_PROFILE": "cloud"}
    options = connect_options(Settings(), environ)
    assert (options["target_host"], options["namespace"], options["api_key"], options["tls"]) == \
        ("billing.abc12.tmprl.cloud:7233", "billing.abc12", "secret-key", True)
    assert connect_options(Settings(), {"TEMPORAL_ADDRESS": "temporal.internal:7233"})["target_host"] == \
        "temporal.internal:7233"
    options = connect_options(Settings(temporal_namespace="billing-prod"), environ)
    assert (options["target_host"], options["namespace"]) == ("billing.abc12.tmprl.cloud:7233", "billing-prod")
    # Nothing given anywhere: the settings' defaults.
    assert connect_options(Settings(), {})["target_host"] == "localhost:7233"


def test_an_unknown_profile_is_one_line_naming_the_settings_to_check(tmp_path, no_billing_temporal_env):
    environ = {"TEMPORAL_CONFIG_FILE": profile_file(tmp_path, DEAD), "TEMPORAL_PROFILE": "staging"}
    with pytest.raises(TemporalConfigError) as error:
        connect_options(Settings(), environ)
    assert str(error.value) == ("cannot read the Temporal client config (check TEMPORAL_CONFIG_FILE and "
                                "TEMPORAL_PROFILE): Profile 'staging' not found")


def failure_of(raise_it) -> Failure:
    try:
        raise_it()
    except Exception as err:  # noqa: BLE001
        failure = Failure()
        DATA_CONVERTER.failure_converter.to_failure(err, DATA_CONVERTER.payload_converter, failure)
        return failure
    raise AssertionError("nothing raised")


def test_a_refusal_leaves_without_stack_trace_and_a_bug_keeps_its_own():
    def refuse():
        raise ApplicationError("downgrades are accepted only 15 to 30 days before the renewal date",
                               type="outside_downgrade_window", non_retryable=True)

    refusal = failure_of(refuse)
    assert refusal.message == "downgrades are accepted only 15 to 30 days before the renewal date"
    assert refusal.application_failure_info.type == "outside_downgrade_window"
    assert refusal.stack_trace == ""

    def database_down():
        try:
            raise ConnectionRefusedError("connection refused")
        except ConnectionRefusedError as err:
            raise ApplicationError("database unreachable: connection refused at 127.0.0.1:5432",
                                   type="database_unavailable") from err

    outage = failure_of(database_down)
    assert outage.message == "database unreachable: connection refused at 127.0.0.1:5432"
    assert outage.application_failure_info.type == "database_unavailable"
    assert outage.stack_trace == "" and outage.cause.message == "connection refused"

    bug = failure_of(lambda: {}["plan"])
    assert bug.application_failure_info.type == "KeyError"
    assert "test_temporal_connection.py" in bug.stack_trace
