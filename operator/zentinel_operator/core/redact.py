"""Take secrets out of text before it is kept as evidence: pure functions, no I/O.

Evidence bundles hold container logs, metrics pages, ``/admin/upstreams`` answers, event messages
and the proxy's config. Any of them can carry a credential a client sent or a person typed. What is
removed, in one pass per line (a PEM private key block, which spans lines, first):

- values of secret-looking keys in every common shape: ``password=x``, ``token: x``,
  ``"apiKey": "x"``, ``'secret': 'x'``, ``\\"token\\":\\"x\\"`` inside a JSON string, KDL's
  ``password "x"``, ``--password x``, query parameters (``?token=x&sig=y``, ``&key=x``);
  a key is secret-looking by its last word (``db_password``, ``X-Auth-Token``, ``clientSecret``,
  ``AWS_SECRET_ACCESS_KEY``, ``session_id``), so ``token_bucket_capacity`` or ``max_tokens`` stay;
- HTTP credentials: ``Authorization: Bearer x`` (the scheme is kept, the credentials go),
  ``Proxy-Authorization``, ``Cookie: a=b; c=d`` and ``Set-Cookie`` (the whole value goes);
- a bare ``Bearer x`` or ``Basic x`` anywhere in a line;
- passwords in URLs (``https://user:pw@host`` keeps the user) and tokens used as the user part;
- long hex or base64 tokens written after a key-like word without ``=`` (``using token 3f9a...``);
- well-known token formats (JWTs, GitHub, Slack, Stripe, AWS access key ids, Google API keys,
  GitLab tokens, Slack webhook paths) and PEM private keys.

Ordinary log text is left alone: words such as "password reset" or "token bucket", request ids,
config revisions and sha256 digests after other words, IP addresses, ports and paths. Output keeps
its structure: a JSON line stays valid JSON, a quoted value stays quoted.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["REDACTED", "is_secret_key", "redact", "redact_counted", "redact_line"]

REDACTED = "[REDACTED]"

# A key is secret-looking when its last word is one of these...
_SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "pass",
        "passphrase",
        "secret",
        "secrets",
        "token",
        "apikey",
        "auth",
        "authorization",
        "cookie",
        "cookies",
        "credential",
        "credentials",
        "signature",
        "sig",
        "jwt",
        "bearer",
        "session",
        "sessionid",
        "sid",
        "jsessionid",
        "phpsessid",
        "csrf",
        "xsrf",
        "csrftoken",
        "xsrftoken",
        "accesskey",
        "privatekey",
        "secretkey",
        "clientsecret",
        "accesstoken",
        "refreshtoken",
        "authtoken",
        "apitoken",
        "otp",
    }
)
# ... or its last two words are one of these.
_SECRET_PAIRS = frozenset(
    {
        ("api", "key"),
        ("access", "key"),
        ("secret", "key"),
        ("private", "key"),
        ("signing", "key"),
        ("encryption", "key"),
        ("master", "key"),
        ("account", "key"),
        ("routing", "key"),
        ("integration", "key"),
        ("service", "key"),
        ("license", "key"),
        ("auth", "key"),
        ("session", "id"),
        ("session", "key"),
    }
)
# Secret only as a query parameter (``?key=...``, ``&code=...``): in prose these are ordinary words.
_QUERY_ONLY = frozenset({"key", "code", "pw"})

# Values that are not secrets even under a secret-looking key.
_TRIVIAL = frozenset(
    {
        "",
        "null",
        "none",
        "nil",
        "true",
        "false",
        "yes",
        "no",
        "on",
        "off",
        "enabled",
        "disabled",
        "required",
        "optional",
        "set",
        "unset",
        "present",
        "absent",
        "missing",
        "empty",
        "invalid",
        "expired",
        "undefined",
        "redacted",
        REDACTED.lower(),
        "<redacted>",
        "-",
        "n/a",
    }
)

_AUTH_KEYS = frozenset({"authorization", "proxyauthorization"})
_COOKIE_KEYS = frozenset({"cookie", "setcookie", "cookies"})
# Authorization schemes whose credentials are one token; for the others everything after the scheme goes.
_ONE_TOKEN_SCHEMES = frozenset({"bearer", "basic", "token", "apikey", "api-key", "key", "jwt", "negotiate", "ntlm"})
_SCHEME = re.compile(
    r"(?i)(?P<scheme>bearer|basic|digest|token|negotiate|ntlm|api-?key|key|jwt|hoba|mutual|oauth|mac|"
    r"scram-sha-\d+|aws4-hmac-sha256|ssws|splunk|geniekey)(?P<space>\s+)"
)

# Cheap pre-check: a line containing none of these has nothing to redact.
_STEMS = (
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "auth",
    "cookie",
    "sess",
    "sig",
    "credential",
    "bearer",
    "basic",
    "jwt",
    "eyj",
    "://",
    "csrf",
    "xsrf",
    "code",
    "sid",
    "otp",
    "akia",
    "asia",
    "gh",
    "xox",
    "sk_",
    "sk-",
    "rk_",
    "aiza",
    "glpat",
    "hooks.slack",
)

_KEY = re.compile(
    r"""(?<![\w.\-/@%+])(?P<dash>--?)?(?P<q>\\?["']|)(?P<key>[A-Za-z][A-Za-z0-9_.\-]*)(?P=q)""",
)
_SEP = re.compile(r"\s*(?:=>|:=|[:=])\s*|\s+")
_VALUE = re.compile(
    r"""\\"(?:(?!\\").)*\\"
      | "(?:[^"\\\n]|\\.)*"
      | '(?:[^'\\\n]|\\.)*'
      | \[REDACTED\]
      | (?![\[{(])[^\s,;&"'}\])\\]+
    """,
    re.VERBOSE,
)
# Where an unquoted header value ends: a quote or backslash (the end of an enclosing string), or the line end.
_HEADER_END = re.compile(r"""["'\\\r\n]""")
_TOKEN = re.compile(r"""[^\s"'\\,;\]\)}]+""")
# Parameters of a Digest-style Authorization value: ``username="bob", realm="x", response="..."``.
_AUTH_PARAMS = re.compile(r"""(?:[\w-]+=(?:\\?"(?:(?!\\?").)*\\?"|[^\s,"'\\]+)[ \t]*,?[ \t]*)+""")

_PEM = re.compile(
    r"-----BEGIN (?P<kind>[A-Z0-9 ]*?)PRIVATE KEY-----.*?(?:-----END (?P=kind)PRIVATE KEY-----|\Z)", re.DOTALL
)
_URL_PASSWORD = re.compile(
    r"""(?i)\b(?P<scheme>[a-z][a-z0-9+.\-]*://)(?P<user>[^\s/?#@:"'<>\[\]]*):(?P<pw>[^\s/?#"'<>]+)@"""
)
_URL_TOKEN_USER = re.compile(r"""(?i)\b(?P<scheme>[a-z][a-z0-9+.\-]*://)(?P<tok>[A-Za-z0-9_\-.~%]{16,})@""")
_BARE_CREDENTIALS = re.compile(
    r"(?i)(?<![\w-])(?P<scheme>bearer|basic)(?P<space>\s+)(?!\[REDACTED\])(?P<tok>[A-Za-z0-9\-._~+/]{8,}=*)"
)
_AFTER_KEYWORD = re.compile(
    r"""(?ix)(?<![\w-])
    (?P<kw>
        pass(?:word|wd|phrase)
      | secret(?:[\s_-]?key)?
      | (?:api|access|auth|refresh|session|id|bearer|security)?[\s_-]?token
      | api[\s_-]?key | access[\s_-]?key | private[\s_-]?key
      | credentials? | session[\s_-]?id | signature | bearer
    )
    (?P<sep>\s*(?:[:=]|\bis\b|\bwas\b)?\s*["']?)
    (?P<val>[A-Fa-f0-9]{16,}|[A-Za-z0-9+/_\-.]{20,}={0,2})
    (?![\w+/=-])
    """
)
_KNOWN_TOKENS = (
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),  # JWT
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key id
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),  # GitHub
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{30,}\b"),
    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),  # Slack
    re.compile(r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}\b"),  # Stripe
    re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}"),
    re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),  # Google API key
    re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}"),  # GitLab
)
_SLACK_HOOK = re.compile(r"(?i)(hooks\.slack\.com/(?:services|workflows|triggers)/)[A-Za-z0-9/_-]+")


# ---------------------------------------------------------------------------------- keys
def _words(key: str) -> list[str]:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def is_secret_key(key: str, *, query: bool = False) -> bool:
    """Whether a value under ``key`` is taken for a secret (``query``: the key is a URL query parameter)."""
    words = _words(key)
    if not words:
        return False
    last = words[-1]
    if last in _SECRET_WORDS or "".join(words) in _SECRET_WORDS:
        return True
    if len(words) >= 2 and (words[-2], last) in _SECRET_PAIRS:
        return True
    return query and len(words) == 1 and last in _QUERY_ONLY


def _trivial(value: str) -> bool:
    v = value.strip().lower()
    return v in _TRIVIAL or set(v) <= {"*"}


# ------------------------------------------------------------------------- key = value
def _quoted(val: str) -> tuple[str, str] | None:
    """(delimiter, inside) for a quoted value, None for an unquoted one."""
    for delim in ('\\"', '"', "'"):
        if len(val) >= 2 * len(delim) and val.startswith(delim) and val.endswith(delim):
            return delim, val[len(delim) : -len(delim)]
    return None


def _auth_value(inner: str) -> str:
    """Credentials of an Authorization value redacted, the scheme kept."""
    m = _SCHEME.match(inner)
    if m and m.end() < len(inner):
        return inner[: m.end()] + REDACTED
    return REDACTED


class _Counter:
    def __init__(self) -> None:
        self.n = 0

    def hit(self, text: str = REDACTED) -> str:
        self.n += 1
        return text


def _header_value(line: str, start: int, words: str) -> tuple[int, str] | None:
    """(end, replacement) for an unquoted Authorization or Cookie value starting at ``start``."""
    stop = _HEADER_END.search(line, start)
    end = stop.start() if stop else len(line)
    rest = line[start:end]
    if _trivial(rest.strip("[]")):
        return None
    if words in _COOKIE_KEYS:
        return end, REDACTED  # every cookie of the header
    lead = len(rest) - len(rest.lstrip("["))
    sm = _SCHEME.match(rest, lead)
    if sm is not None and sm.group("scheme").lower() not in _ONE_TOKEN_SCHEMES:
        # Digest, AWS4-HMAC-SHA256, ...: every parameter goes.
        pm = _AUTH_PARAMS.match(line, start + sm.end())
        end = pm.start() + len(pm.group(0).rstrip(" \t,")) if pm is not None else end
        return end, rest[: sm.end()] + REDACTED
    after = sm.end() if sm is not None else lead
    if rest.startswith(REDACTED, after):
        return None
    tm = _TOKEN.match(rest, after)
    if tm is None:
        return None
    return start + tm.end(), rest[:after] + REDACTED


def _key_values(line: str, counter: _Counter) -> str:
    out: list[str] = []
    pos = 0  # copied up to here
    scan = 0
    while (km := _KEY.search(line, scan)) is not None:
        scan = km.end()
        key = km.group("key")
        before = line[km.start() - 1] if km.start() > 0 else ""
        if not is_secret_key(key, query=before in ("?", "&") and not km.group("q")):
            continue
        sm = _SEP.match(line, km.end())
        if sm is None or sm.end() >= len(line):
            continue
        sep, start = sm.group(0), sm.end()
        vm = _VALUE.match(line, start)
        quoted = _quoted(vm.group(0)) if vm is not None else None
        if not sep.strip() and quoted is None and not km.group("dash"):
            continue  # "password reset": prose, not a key and its value
        words = "".join(_words(key))
        if quoted is not None:
            assert vm is not None
            delim, inner = quoted
            end = vm.end()
            if _trivial(inner):
                scan = end
                continue
            new = delim + (_auth_value(inner) if words in _AUTH_KEYS else REDACTED) + delim
        elif words in _AUTH_KEYS or (words in _COOKIE_KEYS and ":" in sep):
            # A header value runs to the end of the line (or of the string it sits in), not to the next space.
            header = _header_value(line, start, words)
            if header is None:
                continue
            end, new = header
        elif vm is not None:
            end = vm.end()
            if vm.group(0) == REDACTED or _trivial(vm.group(0)):
                scan = end
                continue
            # A JSON key ("k": 123) keeps its document valid with a quoted replacement.
            new = f'"{REDACTED}"' if km.group("q") == '"' and sep.strip() == ":" else REDACTED
        else:
            continue
        out.append(line[pos:start])
        out.append(counter.hit(new))
        pos = scan = end
    out.append(line[pos:])
    return "".join(out)


# ------------------------------------------------------------------------- other rules
def _sub(pattern: re.Pattern[str], line: str, counter: _Counter, repl: Callable[[re.Match[str]], str | None]) -> str:
    def fn(m: re.Match[str]) -> str:
        new = repl(m)
        if new is None:
            return m.group(0)
        return counter.hit(new)

    return pattern.sub(fn, line)


def _url_password(m: re.Match[str]) -> str | None:
    if m.group("pw") == REDACTED:
        return None
    return f"{m.group('scheme')}{m.group('user')}:{REDACTED}@"


def _url_token_user(m: re.Match[str]) -> str | None:
    if not any(ch.isdigit() for ch in m.group("tok")):
        return None
    return f"{m.group('scheme')}{REDACTED}@"


def _bare_credentials(m: re.Match[str]) -> str | None:
    tok = m.group("tok")
    if not (any(ch.isdigit() or ch in "._~+/-=" for ch in tok) or len(tok) >= 20):
        return None  # "Basic authentication", "bearer tokens": words, not credentials
    return f"{m.group('scheme')}{m.group('space')}{REDACTED}"


def _after_keyword(m: re.Match[str]) -> str | None:
    val = m.group("val")
    hexadecimal = re.fullmatch(r"[A-Fa-f0-9]+", val) is not None
    if not hexadecimal and not (re.search(r"\d", val) and re.search(r"[A-Za-z]", val)):
        return None
    return f"{m.group('kw')}{m.group('sep')}{REDACTED}"


def _line(line: str, counter: _Counter) -> str:
    lowered = line.lower()
    if not any(stem in lowered for stem in _STEMS):
        return line
    line = _key_values(line, counter)
    line = _sub(_URL_PASSWORD, line, counter, _url_password)
    line = _sub(_URL_TOKEN_USER, line, counter, _url_token_user)
    line = _sub(_BARE_CREDENTIALS, line, counter, _bare_credentials)
    line = _sub(_AFTER_KEYWORD, line, counter, _after_keyword)
    for pattern in _KNOWN_TOKENS:
        line = _sub(pattern, line, counter, lambda _m: REDACTED)
    return _sub(_SLACK_HOOK, line, counter, lambda m: m.group(1) + REDACTED)


def redact_counted(text: str) -> tuple[str, int]:
    """``text`` with secrets replaced by ``[REDACTED]``, and how many replacements were made."""
    counter = _Counter()
    text = _sub(
        _PEM,
        text,
        counter,
        lambda m: (
            f"-----BEGIN {m.group('kind')}PRIVATE KEY-----\n{REDACTED}\n-----END {m.group('kind')}PRIVATE KEY-----"
        ),
    )
    lines = text.splitlines(keepends=True)
    return "".join(_line(line, counter) for line in lines), counter.n


def redact(text: str) -> str:
    """``text`` with secrets replaced by ``[REDACTED]``."""
    return redact_counted(text)[0]


def redact_line(line: str) -> str:
    """One line (or a short message) with secrets replaced by ``[REDACTED]``."""
    return redact(line)
