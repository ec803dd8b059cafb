"""Fault injection for the Lambda handlers: AWS errors as they arrive on the wire.

`FaultInjector` hooks a boto3 client's `before-send` event, which botocore emits once per HTTP
attempt *inside* its retry loop. A fault answers the request with the HTTP error response the
service would send (rendered for the service's protocol, so botocore's real parser and its
standard-mode retry rules classify it), or raises the exception a broken network raises
(`ReadTimeoutError`, `ConnectTimeoutError`, `EndpointConnectionError`). botocore's Stubber
can't do this: it answers at `before-call`, above the retry loop, so nothing would be retried.

moto's own `before-send` handler is moved behind the injector, so a faulted request never
reaches moto (no side effect), except for a `lost_response` fault: the request is processed,
then its response is lost on the way back (a timeout after the service acted).
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from xml.sax.saxutils import escape

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

Backend = Callable[..., AWSResponse | None]


@dataclass(frozen=True)
class Fault:
    """One kind of AWS failure.

    `codes` maps a botocore service name to its (error code, HTTP status) for this kind of
    failure, with "*" as the fallback; `network` makes the attempt raise instead (it gets the
    endpoint URL); `retried` says whether botocore's standard retry mode retries it.
    """

    kind: str
    codes: dict[str, tuple[str, int]] = field(default_factory=dict)
    message: str = ""
    network: Callable[[str], Exception] | None = None
    retried: bool = False
    lost_response: bool = False

    def code_for(self, service: str) -> tuple[str, int]:
        return self.codes.get(service) or self.codes["*"]

    def after_processing(self) -> Fault:
        """The same fault, but after the service processed the request (response lost)."""
        return replace(self, kind=f"{self.kind}-after-send", lost_response=True)


THROTTLED = Fault(
    "throttled",
    {
        "*": ("ThrottlingException", 400),
        "dynamodb": ("ProvisionedThroughputExceededException", 400),
        "s3": ("SlowDown", 503),
        "sqs": ("RequestThrottled", 400),
        "cloudformation": ("Throttling", 400),
    },
    "Rate exceeded",
    retried=True,
)
ACCESS_DENIED = Fault(
    "access-denied",
    {
        "*": ("AccessDeniedException", 400),
        "s3": ("AccessDenied", 403),
        "sqs": ("AccessDenied", 403),
        "cloudformation": ("AccessDenied", 403),
    },
    "User: arn:aws:sts::123456789012:assumed-role/fn-role/fn is not authorized to perform "
    "this action because no identity-based policy allows it",
)
NOT_FOUND = Fault(
    "not-found",
    {
        "*": ("ResourceNotFound", 400),
        "dynamodb": ("ResourceNotFoundException", 400),
        "s3": ("NoSuchBucket", 404),
        "sqs": ("QueueDoesNotExist", 400),
        "cloudformation": ("ValidationError", 400),
    },
    "Requested resource does not exist",
)
INTERNAL_ERROR = Fault(
    "internal-error",
    {"*": ("InternalFailure", 500), "s3": ("InternalError", 500)},
    "We encountered an internal error. Please try again.",
    retried=True,
)
UNAVAILABLE = Fault(
    "service-unavailable",
    {"*": ("ServiceUnavailable", 503)},
    "Service is unavailable. Please try again later.",
    retried=True,
)
READ_TIMEOUT = Fault(
    "read-timeout", network=lambda url: ReadTimeoutError(endpoint_url=url), retried=True
)
CONNECT_TIMEOUT = Fault(
    "connect-timeout", network=lambda url: ConnectTimeoutError(endpoint_url=url), retried=True
)
CONNECTION_REFUSED = Fault(
    "endpoint-connection",
    network=lambda url: EndpointConnectionError(endpoint_url=url),
    retried=True,
)

#: Every kind of fault the suite injects, one of each family.
ALL_FAULTS = (
    THROTTLED,
    ACCESS_DENIED,
    NOT_FOUND,
    INTERNAL_ERROR,
    UNAVAILABLE,
    READ_TIMEOUT,
    CONNECT_TIMEOUT,
    CONNECTION_REFUSED,
)


def total_attempts(client: Any) -> int:
    """HTTP attempts botocore makes for one call of `client` (standard mode counts)."""
    retries = client.meta.config.retries or {}
    if "total_max_attempts" in retries:
        return int(retries["total_max_attempts"])
    if "max_attempts" in retries:
        return int(retries["max_attempts"]) + 1
    return 3


class _Body:
    """The raw HTTP body botocore reads a response from."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data

    def read(self, *_: Any) -> bytes:
        data, self._data = self._data, b""
        return data


def error_response(client: Any, request: AWSPreparedRequest, fault: Fault) -> AWSResponse:
    """The HTTP error response of `client`'s service for `fault`, in its wire protocol."""
    model = client.meta.service_model
    code, status = fault.code_for(model.service_name)
    request_id = str(uuid.uuid4())
    message = escape(fault.message)
    headers: dict[str, str] = {"x-amzn-RequestId": request_id}
    if model.protocol == "json":
        headers["Content-Type"] = f"application/x-amz-json-{model.metadata['jsonVersion']}"
        body = json.dumps({"__type": code, "message": fault.message}).encode()
    elif model.protocol == "query":
        headers["Content-Type"] = "text/xml"
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId>"
            "</ErrorResponse>"
        ).encode()
    elif model.protocol == "rest-xml":
        headers["Content-Type"] = "application/xml"
        body = (
            f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
            f"<Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
        ).encode()
    else:  # pragma: no cover - only the protocols of the services under test
        raise NotImplementedError(model.protocol)
    return AWSResponse(request.url, status, headers, _Body(body))


@dataclass
class _Plan:
    operation: str
    fault: Fault
    skip: int  # attempts of `operation` to let through first
    remaining: int  # attempts to fault; -1 = every attempt from then on


class FaultInjector:
    """Injects faults into one boto3 client's HTTP attempts (see the module docstring).

    `backend(request=..., event_name=...)` answers the requests that are not faulted: moto's
    handler by default, or a scripted fake service.
    """

    def __init__(self, client: Any, backend: Backend | None = None) -> None:
        from moto.core.models import botocore_stubber

        self.client = client
        self.backend: Backend = backend or botocore_stubber
        self.attempts: Counter[str] = Counter()  # operation -> HTTP attempts seen
        self.faulted: Counter[str] = Counter()  # operation -> attempts answered with a fault
        self.plans: list[_Plan] = []
        events = client.meta.events
        events.unregister("before-send", botocore_stubber)
        events.register("before-send", self._before_send)

    def fail(
        self,
        operation: str,
        fault: Fault,
        *,
        call: int = 1,
        attempts: int | None = None,
        persistent: bool = False,
    ) -> None:
        """Fail the `call`-th call of `operation` from now: every attempt botocore makes for
        it (one if the fault isn't retried), or only its first `attempts` attempts (a
        transient fault the in-process retry gets past), or every call from then on if
        `persistent`."""
        if attempts is None:
            attempts = total_attempts(self.client) if fault.retried else 1
        self.plans.append(_Plan(operation, fault, call - 1, -1 if persistent else attempts))

    def expected_attempts(self, fault: Fault) -> int:
        """HTTP attempts botocore makes before giving up on `fault`."""
        return total_attempts(self.client) if fault.retried else 1

    def heal(self) -> None:
        """Stop injecting: the AWS outage is over."""
        self.plans.clear()

    def reset(self) -> None:
        """Forget every plan and count (a client reused by the next test)."""
        self.heal()
        self.attempts.clear()
        self.faulted.clear()

    def _before_send(self, request: AWSPreparedRequest, event_name: str, **kwargs: Any) -> Any:
        operation = event_name.rsplit(".", 1)[-1]
        self.attempts[operation] += 1
        plan = next((p for p in self.plans if p.operation == operation and p.remaining), None)
        if plan is not None and plan.skip > 0:
            plan.skip -= 1
            plan = None
        if plan is None:
            return self.backend(request=request, event_name=event_name, **kwargs)
        if plan.remaining > 0:
            plan.remaining -= 1
        self.faulted[operation] += 1
        fault = plan.fault
        if fault.lost_response:
            self.backend(request=request, event_name=event_name, **kwargs)
        if fault.network is not None:
            raise fault.network(request.url)
        return error_response(self.client, request, fault)


class Clock:
    """A controllable clock in epoch seconds, starting at the wall clock (moto stamps objects
    with real time)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
