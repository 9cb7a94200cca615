"""The tests' moto server speaks Athena's rest-json protocol (botocore >= 1.44.18) for every call the
product makes, checked against botocore's own model of those operations."""

import re

import boto3
import botocore.session
import pytest
from botocore.model import ServiceModel
from botocore.serialize import create_serializer
from moto import settings as moto_settings

from magsev_dagster_tests.fakes.athena_rest import rest_paths
from magsev_dagster_tests.fakes.moto_server import aws_env, client_of_a_new_user, moto  # noqa: F401  (fixtures)

# Every Athena operation the product (resources/aws/athena.py, provision.py) and its tests' helpers call,
# with parameters as they send them.
PRODUCT_CALLS = {
    "StartQueryExecution": {
        "QueryString": "SELECT 1",
        "WorkGroup": "primary",
        "ResultConfiguration": {"OutputLocation": "s3://b/athena-results/"},
    },
    "GetQueryExecution": {"QueryExecutionId": "a1b2"},
    "GetQueryResults": {"QueryExecutionId": "a1b2", "NextToken": "t", "MaxResults": 1000},
    "ListQueryExecutions": {"NextToken": "t", "WorkGroup": "primary"},
    "GetWorkGroup": {"WorkGroup": "primary"},
    "CreateWorkGroup": {"Name": "magsev", "Configuration": {}},
    "UpdateWorkGroup": {"WorkGroup": "magsev", "ConfigurationUpdates": {}},
}


def athena_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("athena")


def routed(rules: dict[str, list[str]], method: str, path: str) -> set[str]:
    """The operations whose rule matches `path` and whose HTTP method is `method`."""
    model = athena_model()
    return {
        op
        for rule, ops in rules.items()
        if re.fullmatch(rule.format(""), path)
        for op in ops
        if model.operation_model(op).http["method"] == method
    }


@pytest.mark.parametrize("operation", sorted(PRODUCT_CALLS))
def test_each_product_call_as_botocore_serializes_it_reaches_its_own_operation(operation):
    model = athena_model()
    assert model.protocol == "rest-json", "the installed botocore no longer speaks rest-json to Athena"
    op = model.operation_model(operation)
    request = create_serializer(model.protocol).serialize_to_request(PRODUCT_CALLS[operation], op)
    assert routed(rest_paths(model), request["method"], request["url_path"]) == {operation}


def test_a_json_protocol_model_needs_no_rules():
    model = athena_model()
    as_json = ServiceModel(
        {**model._service_description, "metadata": {**model.metadata, "protocol": "json", "protocols": ["json"]}},
        "athena",
    )
    assert rest_paths(as_json) == {}


def signed_by_a_user_with(action: str, monkeypatch):
    """An Athena client of a new IAM user allowed `action`; moto checks signatures and policies from now on."""
    athena = client_of_a_new_user("athena", "athena-user", {"Effect": "Allow", "Action": action, "Resource": "*"})
    monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    return athena


@pytest.mark.parametrize("signed", [False, True], ids=["unchecked", "signature-and-policy-checked"])
def test_the_product_calls_round_trip_on_the_server_in_the_clients_protocol(aws_env, monkeypatch, signed):
    athena = (
        signed_by_a_user_with("athena:*", monkeypatch) if signed else boto3.client("athena", region_name="us-east-1")
    )
    started = athena.start_query_execution(**PRODUCT_CALLS["StartQueryExecution"])["QueryExecutionId"]
    execution = athena.get_query_execution(QueryExecutionId=started)["QueryExecution"]
    assert (execution["Query"], execution["Status"]["State"]) == ("SELECT 1", "SUCCEEDED")
    assert athena.list_query_executions(WorkGroup="primary")["QueryExecutionIds"] == [started]
    pages = list(athena.get_paginator("get_query_results").paginate(QueryExecutionId=started))
    assert pages and all("ResultSet" in page for page in pages)
    assert athena.get_work_group(WorkGroup="primary")["WorkGroup"]["Name"] == "primary"
    with pytest.raises(athena.exceptions.InvalidRequestException, match="WorkGroup does not exist"):
        athena.start_query_execution(QueryString="SELECT 1", WorkGroup="missing")


def test_a_signed_rest_call_outside_the_users_policy_is_refused(aws_env, monkeypatch):
    athena = signed_by_a_user_with("athena:GetWorkGroup", monkeypatch)
    assert athena.get_work_group(WorkGroup="primary")["WorkGroup"]["Name"] == "primary"
    with pytest.raises(athena.exceptions.ClientError, match="AccessDenied|not authorized"):
        athena.list_query_executions(WorkGroup="primary")
