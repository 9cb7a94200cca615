"""Athena's rest-json protocol on the tests' moto server.

botocore 1.44.18 describes Athena with the `rest-json` protocol (`POST /query-executions`,
`GET /query-executions/{QueryExecutionId}/results`, ...); up to 1.44.13 it was `json` (`POST /` with
`X-Amz-Target: AmazonAthena.<Operation>`). moto 5.2.5 and 5.2.6 route Athena only at `/`, so every
call from a current botocore got the server's HTML 404. moto's request handling already resolves a
rest-json operation from its method and path (its service router reads botocore's model) and reads
URI and query-string members by name; only the URL rules are missing. This adds them, generated from
the installed botocore's own Athena model, so the server speaks whichever protocol the client speaks
and a client's request is authenticated and handled by moto exactly as the json form is.

One more gap shows once moto enforces IAM: moto re-computes a request's SigV4 signature with its
parsed parameters as the payload when the body is empty, which is right for a form-encoded POST but
not for a rest GET (its parameters are in the path and query; the client signed an empty payload), so
every Athena GET was refused `SignatureDoesNotMatch`. The check is given the empty payload the client
signed.
"""

from __future__ import annotations

import re

import botocore.session
from moto.athena import urls as athena_urls
from moto.athena.responses import AthenaResponse
from moto.iam.access_control import IAMRequestBase

_BODILESS = ("GET", "HEAD", "DELETE")


def rest_paths(service_model) -> dict[str, list[str]]:
    """Each operation's requestUri as a moto URL rule (`{Name}` a path segment, `{Name+}` the rest),
    mapped to the operations served there (one per method); empty for a model without rest paths
    (the json protocol)."""
    if service_model.protocol not in ("rest-json", "rest-xml"):
        return {}
    rules = {}
    for name in service_model.operation_names:
        uri = service_model.operation_model(name).http["requestUri"].split("?")[0]
        pattern = re.sub(r"\{(\w+)\+\}", r"(?P<\1>.+)", uri)
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
        rules.setdefault("{0}" + pattern + "$", []).append(name)
    return rules


def serve_athena_rest_json() -> list[str]:
    """Add the URL rules of the installed botocore's Athena model to moto's Athena (before the server's
    Athena app is first built); returns the rules added. Idempotent."""
    model = botocore.session.get_session().get_service_model("athena")
    added = [rule for rule in rest_paths(model) if rule not in athena_urls.url_paths]
    for rule in added:
        athena_urls.url_paths[rule] = AthenaResponse.dispatch
    if not getattr(IAMRequestBase._create_aws_request, "signs_rest_gets", False):
        IAMRequestBase._create_aws_request = _signed_as_sent(IAMRequestBase._create_aws_request)
    return added


def _signed_as_sent(create_aws_request):
    """moto's request-to-verify, with the empty payload a client signs for an Athena rest GET."""

    def create(self):
        request = create_aws_request(self)
        if self._service == "athena" and self._method in _BODILESS and not self._body:
            request.data = b""
        return request

    create.signs_rest_gets = True
    return create
