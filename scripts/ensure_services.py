#!/usr/bin/env python3
"""Make sure the PostgreSQL and Redis servers used by the test suite are reachable.

Reads CHATSVC_TEST_DATABASE_URL (the *admin* URL; the tests create and drop their own
database through it) and CHATSVC_TEST_REDIS_URL. When a server on a loopback address is
down, tries to start one:

* PostgreSQL: ``pg_ctlcluster --skip-systemctl-redirect <version> main start`` for a
  Debian cluster configured on that port, else a throwaway trust-auth cluster in a
  temporary directory created with ``initdb`` and started with ``pg_ctl -w``.
* Redis: ``redis-server --daemonize yes`` on that port, without persistence.

Then waits up to 20 seconds for both. Exit status 0 when both are reachable, 2 when not.
Standard library only.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import pwd
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import SplitResult, unquote, urlsplit

DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
WAIT_SECONDS = 20.0
QUICK_RECHECK_SECONDS = 3.0
POLL_SECONDS = 0.5
CONNECT_TIMEOUT = 2.0
COMMAND_TIMEOUT = 60.0
POSTGRES_OS_USER = "postgres"
SSL_REQUEST_CODE = 80877103  # PostgreSQL protocol: SSLRequest


@dataclass
class Service:
    kind: str  # "postgresql" or "redis"
    env_var: str
    url: str
    host: str
    port: int
    username: str | None
    password: str | None
    database: str
    tried: list[str] = field(default_factory=list)
    started: str | None = None

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


# --------------------------------------------------------------------------- parsing


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _port(parts: SplitResult, default: int, env_var: str) -> int:
    try:
        return parts.port or default
    except ValueError as exc:
        raise SystemExit(f"error: {env_var} has an invalid port: {exc}") from exc


def parse_service(kind: str, env_var: str, default_url: str, default_port: int) -> Service:
    url = os.environ.get(env_var, "").strip() or default_url
    parts = urlsplit(url)
    database = unquote(parts.path.lstrip("/"))
    return Service(
        kind=kind,
        env_var=env_var,
        url=url,
        host=parts.hostname or "127.0.0.1",
        port=_port(parts, default_port, env_var),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        database=database,
    )


def is_loopback(host: str) -> bool:
    if host.lower() in {"localhost", "localhost.localdomain", "ip6-localhost"}:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --------------------------------------------------------------------------- probes


def _run(argv: list[str], *, cwd: str | None = None, timeout: float = COMMAND_TIMEOUT) -> str:
    """Run a command; return "" on success, else a short description of the failure.

    Output goes to a temporary file, not a pipe: daemons started by the command may
    inherit the descriptors and would otherwise keep us waiting.
    """
    with tempfile.TemporaryFile() as out:
        try:
            proc = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                timeout=timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return str(exc)
        if proc.returncode == 0:
            return ""
        out.seek(0)
        text = out.read().decode(errors="replace").strip().splitlines()
        tail = " | ".join(text[-3:]) if text else "no output"
        return f"exit status {proc.returncode}: {tail}"


def _connect(svc: Service) -> socket.socket | None:
    try:
        return socket.create_connection((svc.host, svc.port), timeout=CONNECT_TIMEOUT)
    except OSError:
        return None


def postgres_ready(svc: Service) -> bool:
    pg_isready = shutil.which("pg_isready")
    if pg_isready:
        argv = [pg_isready, "-q", "-h", svc.host, "-p", str(svc.port), "-t", "2"]
        if svc.username:
            argv += ["-U", svc.username]
        if svc.database:
            argv += ["-d", svc.database]
        return _run(argv, timeout=10) == ""
    # No client tools: send an SSLRequest, to which any PostgreSQL server answers "S" or "N".
    sock = _connect(svc)
    if sock is None:
        return False
    with sock:
        try:
            sock.sendall(struct.pack("!ii", 8, SSL_REQUEST_CODE))
            return sock.recv(1) in {b"S", b"N"}
        except OSError:
            return False


def _resp(*args: str) -> bytes:
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _readline(sock: socket.socket) -> bytes:
    buf = b""
    while not buf.endswith(b"\r\n") and len(buf) < 4096:
        chunk = sock.recv(1)
        if not chunk:
            break
        buf += chunk
    return buf


def redis_ready(svc: Service) -> bool:
    sock = _connect(svc)
    if sock is None:
        return False
    with sock:
        try:
            if svc.password:
                auth = (svc.username, svc.password) if svc.username else (svc.password,)
                sock.sendall(_resp("AUTH", *auth))
                if not _readline(sock).startswith(b"+OK"):
                    return False
            sock.sendall(b"PING\r\n")
            return _readline(sock).startswith(b"+PONG")
        except OSError:
            return False


def ready(svc: Service) -> bool:
    return postgres_ready(svc) if svc.kind == "postgresql" else redis_ready(svc)


# --------------------------------------------------------------------------- starters


def _cluster_port(conf: Path) -> int:
    try:
        text = conf.read_text(errors="replace")
    except OSError:
        return 5432
    match = re.search(r"^\s*port\s*=\s*(\d+)", text, re.MULTILINE)
    return int(match.group(1)) if match else 5432


def start_postgres_cluster(svc: Service) -> bool:
    """Start a Debian-packaged cluster (``/etc/postgresql/<version>/main``) on the port."""
    pg_ctlcluster = shutil.which("pg_ctlcluster")
    etc = Path("/etc/postgresql")
    if not pg_ctlcluster or not etc.is_dir():
        svc.tried.append("pg_ctlcluster: not available (no pg_ctlcluster or /etc/postgresql)")
        return False
    versions = sorted(
        (d.name for d in etc.iterdir() if (d / "main" / "postgresql.conf").is_file()),
        key=lambda v: [int(p) if p.isdigit() else 0 for p in v.split(".")],
        reverse=True,
    )
    matching = [
        v for v in versions if _cluster_port(etc / v / "main" / "postgresql.conf") == svc.port
    ]
    if not matching:
        found = ", ".join(versions) or "none"
        svc.tried.append(f"pg_ctlcluster: no 'main' cluster on port {svc.port} (versions: {found})")
        return False
    for version in matching:
        cmd = [pg_ctlcluster, "--skip-systemctl-redirect", version, "main", "start"]
        error = _run(cmd)
        svc.tried.append(f"{' '.join(cmd)}: {error or 'ok'}")
        if not error:
            svc.started = f"pg_ctlcluster {version} main"
            return True
    return False


def _find_initdb() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve()
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
        reverse=True,
    )
    return candidates[0] if candidates else None


def start_postgres_throwaway(svc: Service) -> bool:
    """Create a trust-auth cluster in a temporary directory and start it on the port."""
    initdb = _find_initdb()
    if initdb is None:
        svc.tried.append("initdb: not found in PATH or /usr/lib/postgresql/*/bin")
        return False
    bindir = initdb.parent
    pg_ctl = bindir / "pg_ctl"
    if not pg_ctl.exists():
        svc.tried.append(f"throwaway cluster: {pg_ctl} not found next to {initdb}")
        return False
    prefix: list[str] = []
    tmp = tempfile.mkdtemp(prefix="chatsvc-pg-")
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        try:
            account = pwd.getpwnam(POSTGRES_OS_USER)
        except KeyError:
            account = None
        if runuser is None or account is None:
            svc.tried.append(
                "throwaway cluster: running as root needs runuser and a 'postgres' user"
            )
            shutil.rmtree(tmp, ignore_errors=True)
            return False
        os.chown(tmp, account.pw_uid, account.pw_gid)
        prefix = [runuser, "-u", POSTGRES_OS_USER, "--"]
    data = os.path.join(tmp, "data")
    log = os.path.join(tmp, "postgresql.log")
    superuser = svc.username or "postgres"
    cmd = [str(initdb), "-D", data, "-U", superuser, "--auth=trust", "-E", "UTF8", "--no-sync"]
    error = _run(prefix + cmd, cwd=tmp)
    svc.tried.append(f"{' '.join(cmd)}: {error or 'ok'}")
    if error:
        return False
    options = f"-p {svc.port} -k {tmp} -c listen_addresses={svc.host} -c fsync=off"
    cmd = [str(pg_ctl), "-D", data, "-l", log, "-w", "-t", "30", "-o", options, "start"]
    error = _run(prefix + cmd, cwd=tmp)
    svc.tried.append(f"{' '.join(cmd)}: {error or 'ok'} (log: {log})")
    if error:
        return False
    createdb = bindir / "createdb"
    if svc.database and svc.database not in {"postgres", "template0", "template1"}:
        cmd = [str(createdb), "-h", tmp, "-p", str(svc.port), "-U", superuser, svc.database]
        error = _run(prefix + cmd, cwd=tmp)
        svc.tried.append(f"{' '.join(cmd)}: {error or 'ok'}")
    svc.started = (
        f"throwaway cluster in {data}; stop it with: {' '.join(prefix)} {pg_ctl} -D {data} stop"
    )
    return True


def start_postgres(svc: Service) -> bool:
    return start_postgres_cluster(svc) or start_postgres_throwaway(svc)


def start_redis(svc: Service) -> bool:
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        svc.tried.append("redis-server: not found in PATH")
        return False
    cmd = [redis_server, "--daemonize", "yes", "--bind", svc.host, "--port", str(svc.port)]
    cmd += ["--save", "", "--appendonly", "no"]
    shown = " ".join(cmd).replace("--save  ", '--save "" ')
    if svc.password:
        cmd += ["--requirepass", svc.password]
        shown += " --requirepass ***"
    error = _run(cmd)
    svc.tried.append(f"{shown}: {error or 'ok'}")
    if error:
        return False
    svc.started = "redis-server --daemonize yes"
    return True


# --------------------------------------------------------------------------- main


def advice(svc: Service) -> str:
    if svc.kind == "postgresql":
        return (
            "install and start PostgreSQL (Debian/Ubuntu: apt-get install postgresql, then\n"
            "    pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start),\n"
            f"  or set {svc.env_var} to the admin URL of a reachable server, e.g.\n"
            f"    {svc.env_var}={DEFAULT_DATABASE_URL}"
        )
    return (
        "install and start Redis (Debian/Ubuntu: apt-get install redis-server, then\n"
        "    redis-server --daemonize yes --bind 127.0.0.1 --port 6379"
        ' --save "" --appendonly no),\n'
        f"  or set {svc.env_var} to the URL of a reachable server, e.g.\n"
        f"    {svc.env_var}={DEFAULT_REDIS_URL}"
    )


def main() -> int:
    services = [
        parse_service("postgresql", "CHATSVC_TEST_DATABASE_URL", DEFAULT_DATABASE_URL, 5432),
        parse_service("redis", "CHATSVC_TEST_REDIS_URL", DEFAULT_REDIS_URL, 6379),
    ]
    pending: list[Service] = []
    for svc in services:
        if ready(svc):
            print(f"{svc.kind} {svc.address} reachable")
            continue
        if not is_loopback(svc.host):
            svc.tried.append(f"nothing: {svc.host} is not a loopback address, so not started here")
        elif svc.kind == "postgresql":
            start_postgres(svc)
        else:
            start_redis(svc)
        pending.append(svc)

    # Wait the full time only when we started something; otherwise re-check briefly
    # (a server may be coming up on its own) and report.
    wait = WAIT_SECONDS if any(svc.started for svc in pending) else QUICK_RECHECK_SECONDS
    deadline = time.monotonic() + wait
    while pending:
        pending = [svc for svc in pending if not _report_if_ready(svc)]
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(POLL_SECONDS)

    for svc in pending:
        tried = "\n".join(f"    - {line}" for line in svc.tried) or "    - nothing"
        print(
            f"error: {svc.kind} at {_redact(svc.url)} ({svc.address}, from {svc.env_var}) "
            f"is not reachable (waited {wait:.0f}s).\n"
            f"  tried:\n{tried}\n"
            f"  to fix: {advice(svc)}",
            file=sys.stderr,
        )
    return 2 if pending else 0


def _report_if_ready(svc: Service) -> bool:
    if not ready(svc):
        return False
    how = f" (started: {svc.started})" if svc.started else ""
    print(f"{svc.kind} {svc.address} reachable{how}")
    return True


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    sys.exit(130)
