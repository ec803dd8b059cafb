"""A small MLflow tracking client over MLflow's REST API (`/api/2.0/mlflow/...`), using only the
standard library and botocore: the run tracker Lambda ships no third-party packages.

A SageMaker managed tracking server (`arn:...:mlflow-tracking-server/<name>`) is reached at
`https://<region>.experiments.sagemaker.aws` with the server's ARN in the
`x-mlflow-sm-tracking-server-arn` header, each request SigV4-signed for the service
`sagemaker-mlflow` (what the sagemaker-mlflow plugin does). Any other tracking URI
(`http://127.0.0.1:5000`) is called as is, unsigned: the local MLflow server of the tests and of
an operator's laptop.

Artifacts go where the run's `artifact_uri` points: `s3://` (a managed server's artifact store:
written with the caller's S3 client; any S3 or botocore error becomes a TrackingError),
`mlflow-artifacts:/` (proxied by the server: `PUT /api/2.0/mlflow-artifacts/artifacts/<path>`)
or `file://` (a local store). The caller copies artifacts only into a store that is its own.

A self-hosted server may take credentials (`Credentials`, MLflow's own client semantics:
username and password -> `Authorization: Basic`, else a token -> `Bearer`); they are sent only
over https to the server's own host, and no redirect is followed with them.

Every failure raises TrackingError with the call and MLflow's message: the caller decides what
to do with it (the Lambda counts it and fails, so the event is retried and then dead-lettered).
"""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

SIGNING_SERVICE = "sagemaker-mlflow"
ARN_HEADER = "x-mlflow-sm-tracking-server-arn"
TIMEOUT_SECONDS = 20
# MLflow's log-batch limits: at most 1000 metrics, 100 params and 100 tags per request, and
# 1000 items in all.
BATCH_LIMITS = {"metrics": 1000, "params": 100, "tags": 100}
BATCH_TOTAL = 1000
# Runs asked for per runs/search page when every match is wanted (MLflow allows 50000).
SEARCH_PAGE = 1000


class TrackingError(Exception):
    """The tracking server could not be reached, or it rejected a request (`status`: its HTTP
    status code when it answered one, else None)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


# The managed servers' DNS suffix per partition, as the sagemaker-mlflow plugin maps it
# (mlflow_sagemaker_helpers.get_dns_suffix): `<region>.experiments.sagemaker.aws`, which in vpc
# mode the aws.sagemaker.<region>.experiments endpoint's private DNS is to answer. The plugin
# knows no other partition.
DNS_SUFFIXES = {"aws": "aws", "aws-us-gov": "aws"}


def _dns_suffix(partition: str) -> str:
    if partition not in DNS_SUFFIXES:
        raise TrackingError(f"no SageMaker MLflow endpoint is known in partition {partition}")
    return DNS_SUFFIXES[partition]


@dataclass(frozen=True)
class Server:
    """Where the tracking server is: `url`, and for a managed server its ARN and region (the
    requests are then signed)."""

    url: str
    arn: str | None = None
    region: str | None = None

    @classmethod
    def from_uri(cls, uri: str) -> Server:
        """A tracking server ARN (managed or external) or an http(s) URL."""
        if uri.startswith("arn:"):
            parts = uri.split(":", 5)
            if len(parts) != 6 or parts[2] != "sagemaker" or "mlflow-tracking-server/" not in uri:
                raise TrackingError(f"{uri} is not a SageMaker MLflow tracking server ARN")
            partition, region = parts[1], parts[3]
            url = f"https://{region}.experiments.sagemaker.{_dns_suffix(partition)}"
            return cls(url=url, arn=uri, region=region)
        if not uri.startswith(("http://", "https://")):
            raise TrackingError(f"{uri} is neither a tracking server ARN nor an http(s) URL")
        return cls(url=uri.rstrip("/"))


@dataclass(frozen=True)
class Credentials:
    """A self-hosted server's credentials, as MLflow's client reads MLFLOW_TRACKING_USERNAME,
    MLFLOW_TRACKING_PASSWORD and MLFLOW_TRACKING_TOKEN (mlflow.utils.rest_utils): username and
    password together mean basic auth, otherwise the token a bearer token. Never printed."""

    username: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)

    @classmethod
    def from_secret(cls, secret_string: str, where: str) -> Credentials:
        """From a secret's JSON `{"username", "password"}` or `{"token"}`; `where` names the
        secret in the error (which never quotes the secret)."""
        try:
            values = json.loads(secret_string)
        except ValueError:
            values = None
        if not isinstance(values, dict):
            raise TrackingError(f"secret {where} is not a JSON object")
        found = {k: values.get(k) for k in ("username", "password", "token")}
        if any(v is not None and not isinstance(v, str) for v in found.values()):
            raise TrackingError(f"secret {where}: username, password and token must be strings")
        credentials = cls(**{k: v or "" for k, v in found.items()})
        if not (credentials.username and credentials.password) and not credentials.token:
            raise TrackingError(
                f"secret {where} has neither username and password nor token (keys found: "
                f"{', '.join(sorted(str(k) for k in values)) or 'none'})"
            )
        return credentials

    def header(self) -> str:
        if self.username and self.password:
            pair = f"{self.username}:{self.password}".encode()
            return "Basic " + base64.standard_b64encode(pair).decode("ascii")
        return f"Bearer {self.token}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Credentials go to the configured host alone: a redirect is an error, never followed."""

    def redirect_request(
        self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        raise urllib.error.HTTPError(newurl, code, f"redirect to {newurl} refused", headers, fp)


Signer = Callable[[str, str, dict[str, str], bytes], dict[str, str]]


def sigv4_signer(session: Any, region: str) -> Signer:
    """Headers of a request signed with `session`'s credentials (botocore) for the MLflow
    service."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    def sign(method: str, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
        credentials = session.get_credentials().get_frozen_credentials()
        # as the sagemaker-mlflow plugin sends it: the payload's hash, signed with the rest
        payload = {"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()}
        request = AWSRequest(method=method, url=url, data=body, headers={**headers, **payload})
        SigV4Auth(credentials, SIGNING_SERVICE, region).add_auth(request)
        return dict(request.headers.items())

    return sign


class MlflowClient:
    """The calls the run logger makes. `signer` signs each request (managed servers); `s3` is
    the S3 client artifacts under an `s3://` artifact URI are written with."""

    def __init__(
        self,
        server: Server,
        *,
        signer: Signer | None = None,
        s3: Any = None,
        credentials: Credentials | None = None,
    ) -> None:
        if credentials is not None and not server.url.startswith("https://"):
            raise TrackingError(f"credentials are sent over https only, not to {server.url}")
        self.server = server
        self.signer = signer
        self.s3 = s3
        self.credentials = credentials
        self._open = (
            urllib.request.build_opener(_NoRedirect).open
            if credentials is not None
            else urllib.request.urlopen
        )

    def _request(
        self, method: str, path: str, body: bytes | None = None, content_type: str = ""
    ) -> dict[str, Any]:
        url = f"{self.server.url}{path}"
        headers = {"Content-Type": content_type or "application/json"}
        if self.server.arn:
            headers[ARN_HEADER] = self.server.arn
        if self.signer is not None:
            headers = self.signer(method, url, headers, body or b"")
        if self.credentials is not None:
            headers["Authorization"] = self.credentials.header()
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with self._open(request, timeout=TIMEOUT_SECONDS) as response:
                text = response.read().decode("utf-8")
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")[:500]
            raise TrackingError(
                f"{method} {path}: HTTP {error.code}: {detail}", status=error.code
            ) from error
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            where = f"{self.server.url} unreachable"
            raise TrackingError(f"{method} {path}: {where}: {error}") from error
        return json.loads(text) if text.strip() else {}

    def _call(self, method: str, endpoint: str, payload: dict[str, Any]) -> dict[str, Any]:
        if method == "GET":
            query = urllib.parse.urlencode(payload, quote_via=urllib.parse.quote)
            return self._request("GET", f"/api/2.0/mlflow/{endpoint}?{query}")
        return self._request("POST", f"/api/2.0/mlflow/{endpoint}", json.dumps(payload).encode())

    def find_experiment(self, name: str) -> str | None:
        """The id of the experiment `name`, None if there is none (creates nothing)."""
        try:
            found = self._call("GET", "experiments/get-by-name", {"experiment_name": name})
        except TrackingError as error:
            if "RESOURCE_DOES_NOT_EXIST" in str(error):
                return None
            raise
        return str(found["experiment"]["experiment_id"])

    def experiment_id(self, name: str) -> str:
        """The id of the experiment `name`, created if missing (a concurrent create is fine)."""
        for attempt in range(2):
            try:
                found = self._call("GET", "experiments/get-by-name", {"experiment_name": name})
                return str(found["experiment"]["experiment_id"])
            except TrackingError as error:
                if "RESOURCE_DOES_NOT_EXIST" not in str(error) or attempt:
                    raise
            try:
                created = self._call("POST", "experiments/create", {"name": name})
                return str(created["experiment_id"])
            except TrackingError as error:
                if "RESOURCE_ALREADY_EXISTS" not in str(error):
                    raise
        raise TrackingError(f"experiment {name} could neither be found nor created")

    def search_runs(
        self, experiment_id: str, filter_string: str, max_results: int | None = 10
    ) -> list[dict[str, Any]]:
        """Runs (active and deleted excluded) of the experiment matching `filter_string`, oldest
        first: at most `max_results`, or (None) every one, page by page."""
        runs: list[dict[str, Any]] = []
        token = ""
        while True:
            page = SEARCH_PAGE if max_results is None else max_results - len(runs)
            request = {
                "experiment_ids": [experiment_id],
                "filter": filter_string,
                "max_results": page,
                "order_by": ["attributes.start_time ASC"],
                **({"page_token": token} if token else {}),
            }
            found = self._call("POST", "runs/search", request)
            runs += found.get("runs", [])
            token = str(found.get("next_page_token") or "")
            if not token or (max_results is not None and len(runs) >= max_results):
                return runs

    def create_run(
        self, experiment_id: str, run_name: str, start_time_ms: int, tags: dict[str, str]
    ) -> dict[str, Any]:
        created = self._call(
            "POST",
            "runs/create",
            {
                "experiment_id": experiment_id,
                "run_name": run_name,
                "start_time": start_time_ms,
                "tags": [{"key": k, "value": v} for k, v in tags.items()],
            },
        )
        return dict(created["run"])

    def log_batch(
        self,
        run_id: str,
        *,
        params: dict[str, str],
        metrics: list[dict[str, Any]],
        tags: dict[str, str],
    ) -> None:
        """Everything in as few log-batch requests as MLflow's limits allow."""
        items = {
            "params": [{"key": k, "value": v} for k, v in params.items()],
            "metrics": metrics,
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
        }
        while any(items.values()):
            room = BATCH_TOTAL
            batch: dict[str, list[dict[str, Any]]] = {}
            for kind in ("params", "tags", "metrics"):
                size = min(BATCH_LIMITS[kind], room)
                batch[kind], items[kind] = items[kind][:size], items[kind][size:]
                room -= len(batch[kind])
            self._call("POST", "runs/log-batch", {"run_id": run_id, **batch})

    def finish_run(self, run_id: str, status: str, end_time_ms: int) -> None:
        self._call(
            "POST", "runs/update", {"run_id": run_id, "status": status, "end_time": end_time_ms}
        )

    def log_artifact(self, artifact_uri: str, name: str, content: bytes) -> None:
        """Write `content` as `<artifact_uri>/<name>`."""
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if artifact_uri.startswith("s3://"):
            if self.s3 is None:
                raise TrackingError(f"no S3 client to write {artifact_uri}/{name}")
            bucket, _, prefix = artifact_uri.removeprefix("s3://").partition("/")
            key = f"{prefix.rstrip('/')}/{name}" if prefix else name
            try:
                self.s3.put_object(Bucket=bucket, Key=key, Body=content, ContentType=content_type)
            except (ClientError, BotoCoreError) as error:
                raise TrackingError(f"artifact {artifact_uri}/{name}: {error}") from error
        elif artifact_uri.startswith("mlflow-artifacts:"):
            path = urllib.parse.urlparse(artifact_uri).path.lstrip("/")
            quoted = urllib.parse.quote(f"{path}/{name}")
            self._request(
                "PUT", f"/api/2.0/mlflow-artifacts/artifacts/{quoted}", content, content_type
            )
        elif artifact_uri.startswith("file:") or artifact_uri.startswith("/"):
            folder = Path(urllib.parse.urlparse(artifact_uri).path)
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as out:
                out.write(content)
        else:
            allowed = "s3://, mlflow-artifacts: or file:"
            raise TrackingError(f"artifact URI {artifact_uri} is not {allowed}")


__all__ = ["Credentials", "MlflowClient", "Server", "TrackingError", "sigv4_signer"]
