"""TLS certificates without I/O: read what a Secret holds, judge it, and issue replacements.

Everything here works on bytes and a ``now`` passed in, so it is tested with real certificates and
no cluster. The signal layer reads Secrets and performs handshakes; remediation installs what
:func:`verify_pair` accepts, and nothing else (the guardrail "never install a certificate whose key
does not match or whose chain does not verify").

Private keys never appear in an exception message, a ``repr`` or a returned error string: messages
name the Secret key (``tls.key``) and what is wrong with it, never its content. Certificates are
public and may be named by subject, SANs and fingerprint.

Chain checks are done twice when they can be. First the chain is walked by hand from the leaf to a
certificate of the CA bundle: issuer by name, signature checked with the issuer's public key per key
type (RSA PKCS#1 v1.5 and PSS, ECDSA, Ed25519/Ed448, DSA), validity periods of every certificate,
``basicConstraints``, ``keyUsage`` and path length of every issuer. That gives a precise reason a
person can act on. Then, when the leaf names a DNS name or an IP address and every key on the path
is RSA or ECDSA on a NIST curve, cryptography's RFC 5280 server verifier
(:mod:`cryptography.x509.verification`) runs over the same certificates, which adds what strict
clients check beyond that (name constraints, weak issuer keys, extension rules). Its CA/B profile
forbids Ed25519 keys, which TLS 1.3 and Zentinel accept, so such chains are judged by the walk alone.

Modules: ``pem`` reads certificates and keys and names them; ``chains`` checks signatures and chains;
``inspection`` judges a Secret (:func:`inspect_tls_secret`, :func:`verify_pair`); ``issuance`` makes
replacements (:func:`issue_from_ca`, :func:`self_signed`, :func:`tls_secret_data`).
"""

from .inspection import TlsSecretContents, inspect_certificate, inspect_tls_secret, read_tls_secret, verify_pair
from .issuance import IssuedCertificate, issue_from_ca, self_signed, tls_secret_data
from .pem import CertificateError, fingerprint_sha256, key_type_of

__all__ = [
    "CertificateError",
    "IssuedCertificate",
    "TlsSecretContents",
    "fingerprint_sha256",
    "inspect_certificate",
    "inspect_tls_secret",
    "issue_from_ca",
    "key_type_of",
    "read_tls_secret",
    "self_signed",
    "tls_secret_data",
    "verify_pair",
]
