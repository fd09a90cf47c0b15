"""The environment of the host tools a build runs (uv for the wheelhouse, debootstrap, tar).

Never the server's own: it holds the operator's secrets (``MOMA_DATABASE_URL``, storage
connection strings), and tools read their environment in ways a tenant can steer and
print what they read into the tenant-readable build log (uv expands ``${VAR}`` in the
URLs and paths of requirements, on its command line as in files). So a tool gets an
explicit allowlist:

- ``PATH`` and ``TMPDIR`` as the server has them; ``LANG`` / ``LC_ALL`` fixed to C.UTF-8;
- ``HOME`` a fresh empty directory, removed afterwards, and the tool's working
  directory: nothing of the operator's home (``~/.netrc``, tool credentials) is read;
- what the operator configured for fetching packages: proxies (``HTTP(S)_PROXY``,
  ``NO_PROXY``, ``ALL_PROXY``, either case), certificates (``SSL_CERT_FILE``,
  ``SSL_CERT_DIR``, ``REQUESTS_CA_BUNDLE``), every ``UV_*`` setting, and the operator's
  ``uv.toml`` (the user-level one, else the system one), handed over as
  ``UV_CONFIG_FILE`` since ``HOME`` moved. uv runs with ``--no-config``, which skips
  every file it would discover walking up from its working directory but not that one.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator, Mapping

from .scratch import scratch_directory

PASSED = ("PATH", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
          *(f"{name}_proxy" for name in ("http", "https", "no", "all")),
          *(f"{name}_PROXY" for name in ("HTTP", "HTTPS", "NO", "ALL")))
PASSED_PREFIXES = ("UV_",)
FIXED = {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "utf-8"}
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SYSTEM_UV_CONFIG = Path("/etc/uv/uv.toml")


@contextlib.contextmanager
def tool_environment(source: Mapping[str, str] | None = None,
                     defaults: Mapping[str, str] | None = None) -> Iterator[dict[str, str]]:
    """The allowlisted environment, with ``HOME`` an empty directory that lives as long as
    the ``with`` block. ``defaults`` fill in what the operator did not set (a cache
    directory, say)."""
    source = os.environ if source is None else source
    with scratch_directory("moma-tool-home-") as home:
        environment = dict(defaults or {})
        environment.update({name: value for name, value in source.items()
                            if name in PASSED or name.startswith(PASSED_PREFIXES)})
        environment.setdefault("PATH", DEFAULT_PATH)
        uv_config = _uv_config(source)
        if uv_config is not None:
            environment.setdefault("UV_CONFIG_FILE", str(uv_config))
        environment.update(FIXED, HOME=str(home))
        yield environment


def _uv_config(source: Mapping[str, str]) -> Path | None:
    """The operator's ``uv.toml``, where uv itself would look for it: user level first."""
    home = Path(source.get("HOME") or Path.home())
    config_home = Path(source.get("XDG_CONFIG_HOME") or home / ".config")
    system_homes = [Path(part) for part in (source.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(":") if part]
    for candidate in (config_home / "uv" / "uv.toml", *(d / "uv" / "uv.toml" for d in system_homes),
                      SYSTEM_UV_CONFIG):
        if candidate.is_file():
            return candidate
    return None
