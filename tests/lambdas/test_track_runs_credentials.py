"""Run tracker with a self-hosted MLflow server (`tracking.server_uri`): its credentials come from
a Secrets Manager secret (botocore's Stubber, validated against the service model), read once,
and travel as MLflow's own client sends them (`mlflow.utils.rest_utils`: username and password
-> Basic, else token -> Bearer) only over https to that host.

The server here is a real TLS server on loopback (a self-signed certificate for localhost the
client trusts through SSL_CERT_FILE) that records every request: the installed mlflow's
basic-auth app needs Flask-WTF, which is not installed, so the header is checked on the wire and
the REST calls themselves against the real `mlflow server` in test_track_runs.py. A Basic
header is decoded with werkzeug's parser, the one MLflow's basic-auth app reads it with.
"""

from __future__ import annotations

import datetime
import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from werkzeug.datastructures import Authorization

from tests.lambda_loader import lambda_context, load_lambda_module

pytestmark = pytest.mark.usefixtures("aws_credentials")

rest = load_lambda_module("track_runs", "mlflow_rest")
REGION = "eu-west-1"
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:team/mlflow-a1B2c3"
PASSWORD = "p@ss:w0rd-Ünïcode"


@dataclass
class Recorder:
    url: str = ""
    seen: list[tuple[str, str, str | None]] = field(default_factory=list)  # host, path, auth
    accepted: str | None = None  # when set, any other Authorization header gets HTTP 401


def _certificate(folder: Path) -> tuple[Path, Path]:
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture()
def tls_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            recorder.seen.append(
                (self.headers["Host"], self.path, self.headers.get("Authorization"))
            )
            if self.path.startswith("/redirect"):
                # to the same server under another host name: a different host for the client
                self.send_response(302)
                self.send_header("Location", f"https://127.0.0.1:{port}/elsewhere")
                self.end_headers()
                return
            if recorder.accepted is not None and self.headers.get("Authorization") != (
                recorder.accepted
            ):
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = json.dumps({"experiment": {"experiment_id": "7"}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    cert, key = _certificate(tmp_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts this one certificate
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    recorder.url = f"https://localhost:{port}"
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()


def secret_string(**values: Any) -> str:
    return json.dumps(values)


def basic(header: str | None) -> tuple[str, str] | None:
    """(username, password) as MLflow's basic-auth app's parser reads `header`, or None."""
    parsed = Authorization.from_header(header)
    if parsed is None or parsed.type != "basic":
        return None
    return parsed.username or "", parsed.password or ""


def test_basic_credentials_are_sent_as_mlflow_sends_them(tls_server: Recorder) -> None:
    credentials = rest.Credentials.from_secret(
        secret_string(username="ci-bot", password=PASSWORD), SECRET_ARN
    )
    client = rest.MlflowClient(rest.Server.from_uri(tls_server.url), credentials=credentials)
    assert client.find_experiment("mlops-dev-training") == "7"
    [(_, path, auth)] = tls_server.seen
    assert path.startswith("/api/2.0/mlflow/experiments/get-by-name?")
    assert basic(auth) == ("ci-bot", PASSWORD)


def test_a_token_is_a_bearer_and_username_with_password_wins_as_in_mlflow(
    tls_server: Recorder,
) -> None:
    for values, expected in (
        ({"token": "tok-123"}, "Bearer tok-123"),
        ({"username": "u", "password": "p", "token": "tok-123"}, ("u", "p")),
        ({"username": "u", "token": "tok-123"}, "Bearer tok-123"),  # no password: the token
    ):
        credentials = rest.Credentials.from_secret(secret_string(**values), SECRET_ARN)
        client = rest.MlflowClient(rest.Server.from_uri(tls_server.url), credentials=credentials)
        client.find_experiment("x")
        sent = tls_server.seen[-1][2]
        assert (basic(sent) if isinstance(expected, tuple) else sent) == expected


def test_without_credentials_no_authorization_header_is_sent(tls_server: Recorder) -> None:
    rest.MlflowClient(rest.Server.from_uri(tls_server.url)).find_experiment("x")
    assert tls_server.seen[-1][2] is None


def test_a_redirect_is_refused_so_the_credentials_reach_no_other_host(
    tls_server: Recorder,
) -> None:
    credentials = rest.Credentials(token="tok-123")
    server = rest.Server(url=f"{tls_server.url}/redirect")
    client = rest.MlflowClient(server, credentials=credentials)
    with pytest.raises(rest.TrackingError, match="HTTP 302"):
        client.find_experiment("x")
    assert [path for _, path, _ in tls_server.seen if path == "/elsewhere"] == []
    # the same redirect without credentials is followed (urllib's default): the check is real
    rest.MlflowClient(server).find_experiment("x")
    assert [host for host, path, _ in tls_server.seen if path == "/elsewhere"] != []


def test_credentials_are_never_sent_over_plain_http() -> None:
    with pytest.raises(rest.TrackingError, match="over https only"):
        rest.MlflowClient(
            rest.Server.from_uri("http://mlflow.example.com"),
            credentials=rest.Credentials(token="t"),
        )


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        ("not json " + PASSWORD, "is not a JSON object"),
        (json.dumps([PASSWORD]), "is not a JSON object"),
        (secret_string(username="u"), "neither username and password nor token (keys found: "),
        (secret_string(user="u", pass_=PASSWORD), "keys found: pass_, user"),
        (secret_string(username="u", password=123), "must be strings"),
    ],
)
def test_a_malformed_secret_is_one_error_naming_it_and_never_its_values(
    secret: str, expected: str
) -> None:
    with pytest.raises(rest.TrackingError) as raised:
        rest.Credentials.from_secret(secret, SECRET_ARN)
    message = str(raised.value)
    assert expected in message and SECRET_ARN in message and "\n" not in message
    assert PASSWORD not in message and "123" not in message.replace(SECRET_ARN, "")


def test_credentials_do_not_print() -> None:
    assert PASSWORD not in repr(rest.Credentials(username="u", password=PASSWORD))


# ------------------------------------------------------------------------ the Lambda


def _handler(monkeypatch: pytest.MonkeyPatch, url: str, secretsmanager: Any) -> Any:
    handler = load_lambda_module("track_runs")
    monkeypatch.setenv("TRACKING_SERVER", url)
    monkeypatch.setenv("CREDENTIALS_SECRET", SECRET_ARN)
    s3 = boto3.client("s3", region_name=REGION)
    # this test's own client cache: a built tracking client never leaks into other tests
    monkeypatch.setattr(handler, "clients", {"secretsmanager": secretsmanager, "s3": s3})
    return handler


def test_the_lambda_reads_the_secret_once_and_sends_its_credentials(
    tls_server: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    secretsmanager = boto3.client("secretsmanager", region_name=REGION)
    with Stubber(secretsmanager) as stubber:
        stubber.add_response(
            "get_secret_value",
            {
                "ARN": SECRET_ARN,
                "Name": "team/mlflow",
                "SecretString": secret_string(username="ci-bot", password=PASSWORD),
            },
            {"SecretId": SECRET_ARN},
        )
        handler = _handler(monkeypatch, tls_server.url, secretsmanager)
        first = handler._tracking()
        assert handler._tracking() is first  # cached: a second read would find no response
        first.find_experiment("x")
        stubber.assert_no_pending_responses()
    assert basic(tls_server.seen[-1][2]) == ("ci-bot", PASSWORD)


def test_an_unreadable_secret_fails_the_invocation_without_logging_a_value(
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    secretsmanager = boto3.client("secretsmanager", region_name=REGION)
    with Stubber(secretsmanager) as stubber:
        stubber.add_response(
            "get_secret_value",
            {"ARN": SECRET_ARN, "SecretString": secret_string(username="u", pw=PASSWORD)},
            {"SecretId": SECRET_ARN},
        )
        stubber.add_client_error("get_secret_value", "AccessDeniedException", "not authorized", 400)
        handler = _handler(monkeypatch, "https://mlflow.example.com", secretsmanager)
        for expected in ("neither username and password nor token", "could not be read"):
            with pytest.raises(rest.TrackingError, match=expected):
                handler.lambda_handler({}, lambda_context("track-runs", REGION, "123456789012"))
    metrics = capfd.readouterr().out
    logged = [json.dumps(vars(record), default=str) for record in caplog.records]
    assert "TrackingFailures" in metrics and len(logged) == 2
    assert all(SECRET_ARN in line for line in logged)
    assert PASSWORD not in metrics + "".join(logged)


def test_after_a_rotation_the_rejected_credentials_are_dropped_and_the_retry_reads_the_secret(
    tls_server: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warm instance holding the old password: the server's 401 fails the invocation (so the
    rule retries it), and that retry reads the rotated secret instead of failing until a cold
    start. The handler's pipeline logic is replaced by one real REST call to the server."""
    secretsmanager = boto3.client("secretsmanager", region_name=REGION)
    old, new = (secret_string(username="ci-bot", password=p) for p in ("old", PASSWORD))
    with Stubber(secretsmanager) as stubber:
        for value in (old, new):
            stubber.add_response(
                "get_secret_value",
                {"ARN": SECRET_ARN, "SecretString": value},
                {"SecretId": SECRET_ARN},
            )
        handler = _handler(monkeypatch, tls_server.url, secretsmanager)
        monkeypatch.setenv("PIPELINE_NAMES", "p")

        def track(sagemaker: Any, s3: Any, tracking: Any, *args: Any, **kwargs: Any) -> Any:
            tracking.find_experiment("x")
            return handler.tracker.Outcome("logged", "ok", "run-1")

        monkeypatch.setattr(handler.tracker, "track", track)
        context = lambda_context("track-runs", REGION, "123456789012")
        handler.lambda_handler({}, context)  # the old password, accepted before the rotation
        tls_server.accepted = rest.Credentials.from_secret(new, SECRET_ARN).header()
        with pytest.raises(rest.TrackingError, match="HTTP 401") as raised:
            handler.lambda_handler({}, context)
        assert raised.value.status == 401
        assert handler.lambda_handler({}, context)["status"] == "logged"
        stubber.assert_no_pending_responses()  # read twice: at the start and after the 401
    assert [basic(auth) for _, _, auth in tls_server.seen] == [
        ("ci-bot", "old"),
        ("ci-bot", "old"),
        ("ci-bot", PASSWORD),
    ]


def test_a_server_error_keeps_the_credentials(
    tls_server: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a 401/403 drops the client: an outage does not re-read the secret on every retry."""
    secretsmanager = boto3.client("secretsmanager", region_name=REGION)
    with Stubber(secretsmanager) as stubber:
        stubber.add_response(
            "get_secret_value",
            {"ARN": SECRET_ARN, "SecretString": secret_string(token="t")},
            {"SecretId": SECRET_ARN},
        )
        handler = _handler(monkeypatch, f"{tls_server.url}/redirect", secretsmanager)
        first = handler._tracking()
        monkeypatch.setattr(
            handler.tracker,
            "track",
            lambda _s, _3, tracking, *a, **k: tracking.find_experiment("x"),
        )
        with pytest.raises(rest.TrackingError, match="HTTP 302"):
            handler.lambda_handler({}, lambda_context("track-runs", REGION, "123456789012"))
        assert handler._tracking() is first
        stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("code", "hinted"),
    [
        ("AccessDeniedException", True),
        ("ResourceNotFoundException", True),
        ("InternalServiceError", False),
    ],
)
def test_a_refused_or_missing_secret_hints_at_the_full_arn(
    monkeypatch: pytest.MonkeyPatch, code: str, hinted: bool
) -> None:
    """A partial ARN (no 6-character suffix) passes the config pattern but matches neither the
    IAM grant (AccessDenied) nor a secret (ResourceNotFound): the error says what to fix."""
    partial = SECRET_ARN.removesuffix("-a1B2c3")
    secretsmanager = boto3.client("secretsmanager", region_name=REGION)
    with Stubber(secretsmanager) as stubber:
        stubber.add_client_error("get_secret_value", code, "no", 400, {"SecretId": partial})
        handler = _handler(monkeypatch, "https://mlflow.example.com", secretsmanager)
        monkeypatch.setenv("CREDENTIALS_SECRET", partial)
        with pytest.raises(rest.TrackingError) as raised:
            handler._tracking()
    message = str(raised.value)
    assert partial in message and code in message and "\n" not in message
    assert ("use the secret's full ARN with its 6-character suffix" in message) is hinted
