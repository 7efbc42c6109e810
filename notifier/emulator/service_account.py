"""Write a Firebase service-account JSON whose ``token_uri`` points at the emulator.

firebase-admin and google-auth then run their real credentials code (sign a JWT with the key,
post it to ``token_uri``, carry the access token) with no network: the only difference from
production is the file. The key is generated fresh; it protects nothing, so it is not kept secret
beyond the file's permissions.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

EMULATOR_ACCOUNT_NAME = "firebase-adminsdk-emulator"


def service_account_info(*, project_id: str, token_uri: str) -> dict[str, str]:
    """The fields of a service-account JSON with a newly generated RSA key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    email = f"{EMULATOR_ACCOUNT_NAME}@{project_id}.iam.gserviceaccount.com"
    return {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": email,
        "client_id": str(secrets.randbelow(10**21)),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": f"https://www.googleapis.com/robot/v1/metadata/x509/{email}",
        "universe_domain": "googleapis.com",
    }


def write_service_account(path: Path | str, *, project_id: str, token_uri: str) -> Path:
    """Write a service-account JSON for the emulator to ``path`` (mode 0600) and return it.

    Written to a temporary file and renamed, so a concurrent reader never sees half a key.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    info = service_account_info(project_id=project_id, token_uri=token_uri)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(info, handle, indent=2)
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def ensure_service_account(path: Path | str, *, project_id: str, token_uri: str) -> Path:
    """Reuse the service account at ``path`` if it matches the project and endpoint, else write one.

    Reusing it keeps every worker process of a deployment on the same file instead of each one
    generating a key at start-up.
    """
    target = Path(path)
    try:
        info = json.loads(target.read_text("utf-8"))
        if (
            info.get("type") == "service_account"
            and info.get("project_id") == project_id
            and info.get("token_uri") == token_uri
            and info.get("private_key")
        ):
            return target
    except (OSError, ValueError):
        pass
    return write_service_account(target, project_id=project_id, token_uri=token_uri)
