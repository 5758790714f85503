"""Redaction of secrets from evidence text: what goes, and the ordinary log text that must stay."""

from __future__ import annotations

import json

import pytest

from zentinel_operator.core.redact import REDACTED, is_secret_key, redact, redact_counted

R = REDACTED


# --------------------------------------------------------------------------------- headers
@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Authorization: Bearer abcdef0123456789abcdef", f"Authorization: Bearer {R}"),
        ("authorization: bearer abcdef0123456789", f"authorization: bearer {R}"),
        ("Authorization:Bearer abc123", f"Authorization:Bearer {R}"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", f"Authorization: Basic {R}"),
        ("Authorization: Token 0123456789abcdef", f"Authorization: Token {R}"),
        ("Authorization: abcdef0123456789", f"Authorization: {R}"),
        ("Proxy-Authorization: Basic dXNlcjpwYXNz", f"Proxy-Authorization: Basic {R}"),
        (
            'Authorization: Digest username="bob", realm="api", nonce="abc", response="6629fae49393a053"',
            f"Authorization: Digest {R}",
        ),
        (
            "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830, SignedHeaders=host, "
            "Signature=5d672d79c15b13162d9279b0855cfba6 end",
            f"Authorization: AWS4-HMAC-SHA256 {R} end",
        ),
        ("Cookie: session=abc123; theme=dark", f"Cookie: {R}"),
        ("Set-Cookie: id=a3fWa; Expires=Wed, 21 Oct 2026 07:28:00 GMT; Secure", f"Set-Cookie: {R}"),
        ("X-Api-Key: abc123", f"X-Api-Key: {R}"),
        ("X-Auth-Token: 9a8b7c6d", f"X-Auth-Token: {R}"),
        ("x-amz-security-token: FQoGZXIvYXdzEJr", f"x-amz-security-token: {R}"),
    ],
)
def test_http_header_credentials(line: str, expected: str) -> None:
    assert redact(line) == expected


def test_authorization_keeps_the_rest_of_a_header_dump() -> None:
    line = "headers: Authorization: Bearer abc123def456, Host: api.example.com, Accept: */*"
    assert redact(line) == f"headers: Authorization: Bearer {R}, Host: api.example.com, Accept: */*"


def test_go_map_of_headers() -> None:
    line = "request headers map[Accept:[*/*] Authorization:[Bearer abc123xyz] User-Agent:[curl/8.5.0]]"
    assert redact(line) == f"request headers map[Accept:[*/*] Authorization:[Bearer {R}] User-Agent:[curl/8.5.0]]"


def test_python_dict_of_headers() -> None:
    line = "{'Authorization': 'Bearer abc123xyz', 'Cookie': 'sid=1', 'Accept': 'text/html'}"
    assert redact(line) == f"{{'Authorization': 'Bearer {R}', 'Cookie': '{R}', 'Accept': 'text/html'}}"


# ------------------------------------------------------------------------------- JSON lines
def test_json_log_line_stays_valid_json() -> None:
    line = json.dumps(
        {
            "level": "info",
            "msg": "request",
            "headers": {"authorization": "Bearer xyz123456789", "cookie": "a=b; c=d", "accept": "*/*"},
            "password": 1234,
            "api_key": "k-123",
            "session_count": 3,
            "request_id": "9f86d081884c7d659a2feaa0c55ad015",
            "token": None,
            "authenticated": True,
        }
    )
    out, count = redact_counted(line)
    doc = json.loads(out)
    assert doc["headers"] == {"authorization": f"Bearer {R}", "cookie": R, "accept": "*/*"}
    assert doc["password"] == R and doc["api_key"] == R
    assert doc["session_count"] == 3 and doc["request_id"] == "9f86d081884c7d659a2feaa0c55ad015"
    assert doc["token"] is None and doc["authenticated"] is True
    assert count == 4


def test_escaped_json_inside_a_json_string() -> None:
    inner = json.dumps({"authorization": "Bearer abc1234567", "user": "bob"})
    line = json.dumps({"msg": "upstream said " + inner})
    out = redact(line)
    doc = json.loads(out)
    assert json.loads(doc["msg"].removeprefix("upstream said ")) == {"authorization": f"Bearer {R}", "user": "bob"}


def test_logfmt_and_env_dumps() -> None:
    assert redact('level=info msg="login ok" user=bob password=hunter2 took=3ms') == (
        f'level=info msg="login ok" user=bob password={R} took=3ms'
    )
    assert redact("DB_PASSWORD=s3cr3t AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG") == (
        f"DB_PASSWORD={R} AWS_SECRET_ACCESS_KEY={R}"
    )
    assert redact('client_secret="abc def" clientSecret=xyz') == f'client_secret="{R}" clientSecret={R}'


def test_secret_inside_a_quoted_value_of_an_ordinary_key() -> None:
    assert redact('msg="retrying with password=hunter2"') == f'msg="retrying with password={R}"'


def test_colon_forms() -> None:
    assert redact("ERROR: password: hunter2 rejected") == f"ERROR: password: {R} rejected"
    assert redact(":password => 'x1y2'") == f":password => '{R}'"


def test_kdl_and_command_line_forms() -> None:
    assert redact('    password "hunter2"') == f'    password "{R}"'
    assert redact("zentinel --api-token s3cret --config /etc/zentinel.kdl") == (
        f"zentinel --api-token {R} --config /etc/zentinel.kdl"
    )


# ------------------------------------------------------------------------------ URLs
@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("GET /api/items?token=s3cr3tvalue&page=2 HTTP/1.1", f"GET /api/items?token={R}&page=2 HTTP/1.1"),
        ("GET /cb?code=4/0AbCdEf&state=xyz", f"GET /cb?code={R}&state=xyz"),
        ("https://maps.example.com/api?key=AIzaSyA-1234&q=paris", f"https://maps.example.com/api?key={R}&q=paris"),
        (
            "https://acct.blob.core.windows.net/c/b?sv=2021-08-06&sig=abc%2Bdef%3D&se=2026",
            f"https://acct.blob.core.windows.net/c/b?sv=2021-08-06&sig={R}&se=2026",
        ),
        (
            "GET /x?X-Amz-Credential=AKID%2F2026&X-Amz-Signature=deadbeef01 HTTP/1.1",
            f"GET /x?X-Amz-Credential={R}&X-Amz-Signature={R} HTTP/1.1",
        ),
        ("/login?user=bob&password=hunter2#top", f"/login?user=bob&password={R}"),
        ("?access_token=ya29.a0AfH6SM&expires_in=3599", f"?access_token={R}&expires_in=3599"),
    ],
)
def test_query_parameters(line: str, expected: str) -> None:
    assert redact(line) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("connecting to postgres://app:hunter2@db:5432/app", f"connecting to postgres://app:{R}@db:5432/app"),
        ("upstream https://admin:p%40ss@10.0.0.1:8443/x", f"upstream https://admin:{R}@10.0.0.1:8443/x"),
        ("redis://:s3cret@cache:6379/0", f"redis://:{R}@cache:6379/0"),
        ("url=https://user:pw@host/path?x=1", f"url=https://user:{R}@host/path?x=1"),
        ("clone https://ghp_abcdefghijklmnop1234@github.com/o/r", f"clone https://{R}@github.com/o/r"),
        ("https://hooks.slack.com/services/T000/B000/XXXXXXXX", f"https://hooks.slack.com/services/{R}"),
    ],
)
def test_credentials_in_urls(line: str, expected: str) -> None:
    assert redact(line) == expected


# ------------------------------------------------------------------------ bare tokens
@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("sending Bearer abcd1234efgh5678 upstream", f"sending Bearer {R} upstream"),
        ("using token 9f86d081884c7d659a2feaa0c55ad015 for upstream", f"using token {R} for upstream"),
        ("api key 0123456789abcdef0123456789abcdef rejected", f"api key {R} rejected"),
        ("the secret is dGhpcyBpcyBhIHNlY3JldDEyMw== now", f"the secret is {R} now"),
        ("session id 4f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d closed", f"session id {R} closed"),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U seen",
            f"jwt {R} seen",
        ),
        ("key AKIAIOSFODNN7EXAMPLE used", f"key {R} used"),
        ("ghp_abcdefghijklmnopqrstuvwxyz0123456789 leaked", f"{R} leaked"),
        ("xoxb-123456789012-abcdefghijkl posted", f"{R} posted"),
        ("charge with sk_live_abcdefghijklmnop1234", f"charge with {R}"),
        ("glpat-abcdefghijklmnopqrst1 expired", f"{R} expired"),
    ],
)
def test_tokens_without_a_key_value_form(line: str, expected: str) -> None:
    assert redact(line) == expected


def test_pem_private_key_spanning_lines() -> None:
    text = (
        "loading key\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1\nabcdef\n-----END RSA PRIVATE KEY-----\ndone\n"
    )
    out = redact(text)
    assert "MIIEowIBAAKCAQEA1" not in out and "abcdef" not in out
    assert out.startswith("loading key\n-----BEGIN RSA PRIVATE KEY-----\n") and out.endswith("done\n")


def test_pem_key_cut_off_by_a_log_tail_is_still_removed() -> None:
    out = redact("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n")
    assert "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" not in out


# ---------------------------------------------------------------- never over-redact
ORDINARY = [
    "2026-11-27T10:02:05.123Z INFO zentinel_proxy::proxy: Request completed route=api method=GET status=200 "
    "duration_ms=12 request_id=9f86d081884c7d659a2feaa0c55ad015",
    "Configuration validation failed - new configuration REJECTED",
    "Failed to load configuration file /etc/zentinel/zentinel.kdl: unknown block `sytem`",
    "password reset requested for user bob",
    "token bucket refilled: capacity=100 tokens=42 max_tokens=7 token_bucket_capacity=5",
    "config revision 3a7bd3e2360a3d29 loaded (sha256 9f86d081884c7d659a2feaa0c55ad015b3f7f3d3)",
    "upstream api target 10.0.1.11:8000 unhealthy: connection refused",
    "listening on http://0.0.0.0:8080 and https://[::1]:8443",
    'rate-limit { requests-per-second 100; burst 200; key "client-ip" }',
    "tls { cert-file /etc/tls/tls.crt; key-file /etc/tls/tls.key }",
    "secret_name=edge-tls secretName=edge-tls token_url=https://auth.example.com/token",
    "Basic authentication required for /admin",
    "the bearer of bad news",
    "auth_failures=3 authority=api.example.com author=jane",
    "GET /api/v1/items?page=2&sort=asc&limit=50 HTTP/1.1",
    "session_count=3 sessions_open=10 session_timeout=30s",
    "exit code 137 (OOMKilled); back-off 5m0s restarting failed container=zentinel",
    "git clone ssh://git@github.com/zentinelproxy/zentinel.git",
    "cache key 9f86d081884c7d659a2feaa0c55ad015 stored",
    '{"level":"warn","msg":"slow upstream","route":"api","p99_ms":1200,"auth":"none"}',
    'zentinel_requests_total{route="api",method="GET",status="503"} 42',
    "",
]


@pytest.mark.parametrize("line", ORDINARY)
def test_ordinary_log_text_is_left_alone(line: str) -> None:
    out, count = redact_counted(line)
    assert out == line
    assert count == 0


def test_multi_line_text_keeps_line_endings_and_order() -> None:
    text = "a=1\r\nAuthorization: Bearer abc123def\nb=2\n\nlast"
    assert redact(text) == f"a=1\r\nAuthorization: Bearer {R}\nb=2\n\nlast"


def test_redaction_is_idempotent() -> None:
    text = "Authorization: Bearer abc123def\n?token=xyz&a=1\npostgres://u:p@h/db\npassword=x"
    once = redact(text)
    assert redact(once) == once
    assert redact_counted(once)[1] == 0


def test_placeholders_are_not_counted_as_secrets() -> None:
    assert redact_counted("password=*** token=<redacted> secret=null api_key=")[1] == 0


@pytest.mark.parametrize(
    ("key", "query", "secret"),
    [
        ("password", False, True),
        ("db_password", False, True),
        ("X-Auth-Token", False, True),
        ("clientSecret", False, True),
        ("AWS_SECRET_ACCESS_KEY", False, True),
        ("session_id", False, True),
        ("sessionId", False, True),
        ("routing_key", False, True),
        ("api-key", False, True),
        ("token_bucket_capacity", False, False),
        ("max_tokens", False, False),
        ("secret_name", False, False),
        ("key", False, False),
        ("key", True, True),
        ("code", False, False),
        ("code", True, True),
        ("author", False, False),
        ("key_file", False, False),
    ],
)
def test_secret_keys(key: str, query: bool, secret: bool) -> None:
    assert is_secret_key(key, query=query) is secret


def test_many_lines_quickly() -> None:
    import time

    text = "\n".join(ORDINARY * 200 + ["Authorization: Bearer abc123def"] * 200)
    started = time.monotonic()
    out, count = redact_counted(text)
    assert count == 200 and "abc123def" not in out
    assert time.monotonic() - started < 5
