"""A single-node Apache Cassandra 5.0 for the store backend and for tests, run from Maven jars.

Job: fetch ``cassandra-all`` and its runtime jars from Maven Central once (``ops/cassandra/pom.xml``
says which version), write a minimal config into an instance directory, start ``CassandraDaemon``
with the JVM flags Cassandra's own ``jvm-server.options`` / ``jvm17-server.options`` /
``cassandra-env.sh`` give for Java 17, wait for a real CQL handshake, and stop it again.

    python -m parley.tools.cassandra_runner up --dir .parley/cassandra --cql-port 9042 --wait
    python -m parley.tools.cassandra_runner status --dir .parley/cassandra
    python -m parley.tools.cassandra_runner nodetool --dir .parley/cassandra status
    python -m parley.tools.cassandra_runner down --dir .parley/cassandra

Invariants:
- The jar cache (``$PARLEY_CASSANDRA_HOME``, else ``~/.cache/parley/cassandra-<version>``) is either
  complete or ignored: Maven copies into ``lib.tmp`` under a file lock, which is renamed to ``lib`` and
  only then is the ``.complete`` marker (holding the pom's hash) written. A changed pom re-resolves.
- Everything an instance owns is under its directory: ``conf/``, ``data/``, ``logs/``, the pid file
  ``cassandra.pid`` and ``runner.json`` (ports, JMX port, version). Config is rewritten on every start.
- Every socket is on 127.0.0.1: CQL, storage (gossip) and JMX (``cassandra.jmx.local.port``, a
  loopback-only, unauthenticated server, or none). Each instance seeds only itself, so instances
  with different directories and ports never find each other.
- ``stop`` signals a pid only after checking its command line names this instance's directory, so a
  stale pid file can never kill an unrelated process. SIGTERM (Cassandra drains), then SIGKILL.
- "Up" means the CQL port answered an OPTIONS frame with SUPPORTED, not merely accepted a connection.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from parley.tools.cluster import free_port

from parley.errors import ParleyError


def _pom() -> Path:
    """ops/cassandra/pom.xml: in the source tree, or installed with the package (parley/conf/)."""
    here = Path(__file__).resolve().parents[1]
    source = here / "ops" / "cassandra" / "pom.xml"
    return source if source.exists() else here / "conf" / "ops" / "cassandra" / "pom.xml"


POM = _pom()
MAIN_CLASS = "org.apache.cassandra.service.CassandraDaemon"
HOST = "127.0.0.1"
COMMITLOG_SYNC = ("group", "batch", "periodic")
GROUP_WINDOW = "15ms"  # the longest a write waits for its fsync (group mode); docs/adr/0011

# conf/jvm-server.options (Cassandra 5.0), the lines that are not commented out.
JVM_SERVER_OPTIONS = (
    "-ea", "-da:net.openhft...", "-XX:+UseThreadPriorities", "-XX:+HeapDumpOnOutOfMemoryError",
    "-Xss256k", "-XX:+AlwaysPreTouch", "-XX:+UseTLAB", "-XX:+ResizeTLAB", "-XX:+UseNUMA",
    "-XX:+PerfDisableSharedMem", "-Djava.net.preferIPv4Stack=true",
)
# conf/jvm17-server.options (Cassandra 5.0): G1, the JPMS exports/opens, Netty.
JVM17_SERVER_OPTIONS = (
    "-XX:+UseG1GC", "-XX:+ParallelRefProcEnabled", "-XX:MaxTenuringThreshold=1", "-XX:G1HeapRegionSize=16m",
    "-XX:G1RSetUpdatingPauseTimePercent=5", "-XX:MaxGCPauseMillis=300", "-XX:InitiatingHeapOccupancyPercent=70",
    "-Djdk.attach.allowAttachSelf=true",
    *(f"--add-exports={m}=ALL-UNNAMED" for m in (
        "java.base/jdk.internal.misc", "java.management.rmi/com.sun.jmx.remote.internal.rmi",
        "java.rmi/sun.rmi.registry", "java.rmi/sun.rmi.server", "java.sql/java.sql", "java.base/java.lang.ref",
        "jdk.unsupported/sun.misc", "jdk.compiler/com.sun.tools.javac.file", "jdk.attach/sun.tools.attach")),
    *(f"--add-opens={m}=ALL-UNNAMED" for m in (
        "java.base/java.lang.module", "java.base/jdk.internal.loader", "java.base/jdk.internal.ref",
        "java.base/jdk.internal.reflect", "java.base/jdk.internal.math", "java.base/jdk.internal.module",
        "java.base/jdk.internal.util.jar", "jdk.management/com.sun.management.internal", "java.base/sun.nio.ch",
        "java.base/java.io", "java.base/java.lang.reflect", "jdk.compiler/com.sun.tools.javac",
        "java.base/java.lang", "java.base/java.util", "java.base/java.nio")),
    "-Dio.netty.tryReflectionSetAccessible=true", "-Dio.netty.allocator.useCacheForAllThreads=true",
    "-Dio.netty.allocator.maxOrder=11",
)
# Single node, no peers to tell or wait for: skip "waiting for gossip to settle" at start (as ccm does) and
# the 2 s shutdown announcement at stop.
SINGLE_NODE_OPTIONS = ("-Dcassandra.skip_wait_for_gossip_to_settle=0", "-Dcassandra.shutdown_announce_in_ms=0")


class CassandraError(ParleyError):
    default_code = "cassandra_failed"


@dataclass(frozen=True)
class Instance:
    dir: str
    pid: int
    cql_port: int
    storage_port: int
    jmx_port: int | None  # None: no JMX server
    version: str
    heap: str
    dc: str = ""  # its datacenter in a multi-DC cluster (cassandra_cluster.py); "" alone, SimpleSnitch


# ---------------------------------------------------------------- jars


def cassandra_version(pom: Path = POM) -> str:
    """The ``cassandra.version`` property of the pom: the one place the version is written."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ET.parse(pom).getroot().find("m:properties/m:cassandra.version", ns)
    if node is None or not (node.text or "").strip():
        raise CassandraError(f"{pom} sets no <cassandra.version>", code="cassandra_bad_pom")
    return (node.text or "").strip()


def default_cache(pom: Path = POM) -> Path:
    configured = os.environ.get("PARLEY_CASSANDRA_HOME")
    if configured:
        return Path(configured).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "parley" / f"cassandra-{cassandra_version(pom)}"


def _pom_digest(pom: Path) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def _is_complete(cache: Path, digest: str) -> bool:
    marker = cache / ".complete"
    return marker.is_file() and marker.read_text().strip() == digest and (cache / "lib").is_dir()


def _resolve(cache: Path, pom: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise CassandraError("mvn not found: install Maven (apt-get install maven)", code="cassandra_no_maven")
    tmp = cache / "lib.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    command = [mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(pom), "dependency:copy-dependencies",
               f"-DoutputDirectory={tmp}", "-DincludeScope=runtime"]
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        raise CassandraError(f"Maven could not resolve Cassandra's jars:\n{done.stdout[-4000:]}",
                             code="cassandra_no_jars")
    shutil.rmtree(cache / "lib", ignore_errors=True)
    tmp.rename(cache / "lib")


def ensure_jars(cache: Path | None = None, pom: Path = POM) -> str:
    """Resolve the jars into ``cache/lib`` unless already complete; return the classpath string."""
    if not pom.is_file():
        raise CassandraError(f"{pom} not found: run from a checkout of the project", code="cassandra_bad_pom")
    cache = cache or default_cache(pom)
    digest = _pom_digest(pom)
    if not _is_complete(cache, digest):
        cache.mkdir(parents=True, exist_ok=True)
        with open(cache / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits, then finds the cache complete
            if not _is_complete(cache, digest):
                (cache / ".complete").unlink(missing_ok=True)
                _resolve(cache, pom)
                (cache / ".complete").write_text(digest + "\n")
    return os.pathsep.join(str(jar) for jar in sorted((cache / "lib").glob("*.jar")))


def find_jar(classpath: str, prefix: str) -> Path:
    for entry in classpath.split(os.pathsep):
        if Path(entry).name.startswith(prefix):
            return Path(entry)
    raise CassandraError(f"no {prefix}*.jar on the classpath", code="cassandra_no_jars")


# ---------------------------------------------------------------- config


def _q(value: object) -> str:
    """A YAML double-quoted scalar (a JSON string is one)."""
    return json.dumps(str(value))


def commitlog_lines(mode: str) -> str:
    """The commit log's sync mode. ``group`` (the default; docs/adr/0011): a write is answered only once
    the commit log holding it is fsynced, every ``GROUP_WINDOW`` at most, so what Cassandra acked survives
    a kill -9 of the process (and a power cut). ``batch``: the same guarantee, one fsync per write burst.
    ``periodic``: answered at once, fsynced every 10 s — a kill -9 loses up to 10 s of acked writes
    (only for benchmarks that compare)."""
    if mode not in COMMITLOG_SYNC:
        raise CassandraError(f"bad commitlog_sync {mode!r} (one of {', '.join(COMMITLOG_SYNC)})", code="bad_setting")
    if mode == "periodic":
        return "commitlog_sync: periodic\ncommitlog_sync_period: 10000ms"
    if mode == "group":
        return f"commitlog_sync: group\ncommitlog_sync_group_window: {GROUP_WINDOW}"
    return "commitlog_sync: batch"


def cassandra_yaml(dir: Path, cql_port: int, storage_port: int, cluster_name: str = "parley",
                   seeds: Sequence[int] = (), dc: str = "", commitlog_sync: str = "group") -> str:
    """One node's config. Alone: SimpleSnitch, seeded by itself. In a cluster (``dc`` set): the
    GossipingPropertyFileSnitch (``cassandra-rackdc.properties`` names its DC) and every node a seed,
    so the nodes start together and none bootstraps (they are new and empty)."""
    data = dir / "data"
    seed_list = ",".join(f"{HOST}:{port}" for port in (seeds or (storage_port,)))
    role = f"A node of datacenter {dc}" if dc else "Single node"
    return f"""\
# Written by tools/cassandra_runner.py on every start; edits are lost. {role} on 127.0.0.1.
cluster_name: {_q(cluster_name)}
num_tokens: 1
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: {"GossipingPropertyFileSnitch" if dc else "SimpleSnitch"}
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: {_q(seed_list)}
listen_address: {HOST}
rpc_address: {HOST}
storage_port: {storage_port}
start_native_transport: true
native_transport_port: {cql_port}
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
role_manager: CassandraRoleManager
network_authorizer: AllowAllNetworkAuthorizer
data_file_directories:
  - {_q(data / "data")}
commitlog_directory: {_q(data / "commitlog")}
saved_caches_directory: {_q(data / "saved_caches")}
hints_directory: {_q(data / "hints")}
cdc_raw_directory: {_q(data / "cdc_raw")}
{commitlog_lines(commitlog_sync)}
disk_failure_policy: stop
commit_failure_policy: stop
# A new single-node cluster never had 4.x nodes: use 5.0's own storage formats and limits.
storage_compatibility_mode: NONE
# The archiver's unlogged batches hold up to 40 partitions / 40 KiB (PARLEY_CASSANDRA_BATCH_*, docs/adr/0058):
# warn only past those, not at every batch (the defaults: 10 partitions, 5 KiB; refused past 50 KiB as before)
unlogged_batch_across_partitions_warn_threshold: 50
batch_size_warn_threshold: 48KiB
"""


def logback_xml(dir: Path) -> str:
    logs = escape(str(dir / "logs"))
    return f"""\
<configuration scan="false">
  <appender name="SYSTEMLOG" class="ch.qos.logback.core.rolling.RollingFileAppender">
    <file>{logs}/system.log</file>
    <rollingPolicy class="ch.qos.logback.core.rolling.SizeAndTimeBasedRollingPolicy">
      <fileNamePattern>{logs}/system.log.%d{{yyyy-MM-dd}}.%i.zip</fileNamePattern>
      <maxFileSize>50MB</maxFileSize>
      <maxHistory>7</maxHistory>
      <totalSizeCap>500MB</totalSizeCap>
    </rollingPolicy>
    <encoder>
      <pattern>%-5level [%thread] %date{{ISO8601}} %F:%L - %msg%n</pattern>
    </encoder>
  </appender>
  <root level="INFO">
    <appender-ref ref="SYSTEMLOG" />
  </root>
</configuration>
"""


LOGBACK_TOOLS = """\
<configuration scan="false">
  <appender name="STDERR" class="ch.qos.logback.core.ConsoleAppender">
    <target>System.err</target>
    <encoder><pattern>%-5level %msg%n</pattern></encoder>
  </appender>
  <root level="WARN"><appender-ref ref="STDERR" /></root>
</configuration>
"""


def write_config(dir: Path, cql_port: int = 9042, storage_port: int = 7000, cluster_name: str = "parley",
                 seeds: Sequence[int] = (), dc: str = "", commitlog_sync: str = "group") -> Path:
    """Create the instance layout and write conf/cassandra.yaml, conf/logback.xml (and, in a
    datacenter, conf/cassandra-rackdc.properties); return conf/."""
    dir = dir.resolve()
    conf = dir / "conf"
    for sub in ("conf", "logs", "triggers", "data/data", "data/commitlog", "data/saved_caches", "data/hints",
                "data/cdc_raw"):
        (dir / sub).mkdir(parents=True, exist_ok=True)
    (conf / "cassandra.yaml").write_text(cassandra_yaml(dir, cql_port, storage_port, cluster_name, seeds, dc,
                                                          commitlog_sync))
    rackdc = conf / "cassandra-rackdc.properties"
    rackdc.unlink(missing_ok=True)
    if dc:
        rackdc.write_text(f"dc={dc}\nrack=rack1\n")
    (conf / "logback.xml").write_text(logback_xml(dir))
    (conf / "logback-tools.xml").write_text(LOGBACK_TOOLS)
    return conf


def _compiler_hints(classpath: str, conf: Path) -> Path | None:
    """Cassandra's hotspot_compiler (JIT inlining hints) ships inside cassandra-all; copy it out."""
    with zipfile.ZipFile(find_jar(classpath, "cassandra-all-")) as jar:
        if "META-INF/hotspot_compiler" not in jar.namelist():
            return None
        target = conf / "hotspot_compiler"
        target.write_bytes(jar.read("META-INF/hotspot_compiler"))
        return target


# ---------------------------------------------------------------- processes


def java_binary() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise CassandraError("java not found: install a Java 17 JRE (apt-get install openjdk-17-jre-headless)",
                             code="cassandra_no_java")
    return found


def jvm_command(dir: Path, classpath: str, heap: str = "1G", jmx_port: int | None = None) -> list[str]:
    """The full ``java`` argv for one instance whose config ``write_config`` has written."""
    dir = dir.resolve()
    conf, logs = dir / "conf", dir / "logs"
    hints = _compiler_hints(classpath, conf)
    rackdc = conf / "cassandra-rackdc.properties"
    jmx = [f"-Dcassandra.jmx.local.port={jmx_port}", f"-Dcom.sun.management.jmxremote.rmi.port={jmx_port}",
           "-Dcom.sun.management.jmxremote.authenticate=false",
           f"-Djava.rmi.server.hostname={HOST}"] if jmx_port else []
    return [
        java_binary(), *JVM_SERVER_OPTIONS, *JVM17_SERVER_OPTIONS,
        *([f"-Dcassandra-rackdc.properties={rackdc.as_uri()}"] if rackdc.exists() else SINGLE_NODE_OPTIONS),
        f"-Xms{heap}", f"-Xmx{heap}",
        *(["-XX:CompileCommand=quiet", f"-XX:CompileCommandFile={hints}"] if hints else []),
        f"-javaagent:{find_jar(classpath, 'jamm-')}",
        "-XX:OnOutOfMemoryError=kill -9 %p", f"-XX:HeapDumpPath={logs}", f"-XX:ErrorFile={logs}/hs_err_%p.log",
        *jmx,
        f"-Dcassandra.config={(conf / 'cassandra.yaml').as_uri()}",
        f"-Dlogback.configurationFile={conf / 'logback.xml'}",
        f"-Dcassandra.logdir={logs}", f"-Dcassandra.storagedir={dir / 'data'}",
        f"-Dcassandra.triggers_dir={dir / 'triggers'}", "-Dcassandra-foreground=yes",
        "-cp", classpath, MAIN_CLASS,
    ]


def _check_free(port: int, what: str) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError as err:
            raise CassandraError(f"{what} port {HOST}:{port} is taken ({err.strerror})",
                                 code="cassandra_port_taken") from err


_children: dict[int, subprocess.Popen[bytes]] = {}  # started by this process: reaped by stop()


def _pid_file(dir: Path) -> Path:
    return dir.resolve() / "cassandra.pid"


def _read_pid(dir: Path) -> int | None:
    try:
        return int(_pid_file(dir).read_text().strip())
    except (OSError, ValueError):
        return None


def _is_ours(pid: int, dir: Path) -> bool:
    """Alive, not a zombie, and its command line is this directory's Cassandra."""
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    marker = f"-Dcassandra.storagedir={dir.resolve() / 'data'}".encode()
    return state != "Z" and marker in cmdline


def running_pid(dir: Path) -> int | None:
    pid = _read_pid(dir)
    return pid if pid is not None and _is_ours(pid, dir) else None


def _log_tail(dir: Path, lines: int = 30) -> str:
    out = []
    for name in ("stdout.log", "system.log"):
        path = dir.resolve() / "logs" / name
        if path.exists():
            out.append(f"--- {path}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
    return "\n".join(out)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the thread that started us exits (Linux PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def launch(dir: Path, argv: list[str], tie_to_parent: bool = False) -> int:
    """Start the JVM in its own session, output to logs/stdout.log; write the pid file."""
    env = {**os.environ, "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "4")}
    with open(dir / "logs" / "stdout.log", "ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                                cwd=dir, start_new_session=True,
                                preexec_fn=_die_with_parent if tie_to_parent else None)
    _children[proc.pid] = proc
    _pid_file(dir).write_text(f"{proc.pid}\n")
    return proc.pid


def start(dir: Path, cql_port: int = 9042, storage_port: int = 7000, heap: str = "1G", jmx_port: int | None = 0,
          wait: bool = True, timeout: float = 180, cache: Path | None = None, tie_to_parent: bool = False,
          dc: str = "", seeds: Sequence[int] = (), commitlog_sync: str = "group") -> Instance:
    """Start (or find running) the instance in ``dir``. Port 0 picks a free port; ``jmx_port=None``: no JMX.
    ``dc`` and ``seeds`` (the storage ports of every node) make it one node of a multi-DC cluster.
    ``commitlog_sync``: ``commitlog_lines``.

    ``tie_to_parent`` (tests): Cassandra gets SIGTERM if the calling thread dies without calling ``stop``;
    call from the main thread then, never from a pool thread that may exit first.
    """
    dir = dir.resolve()
    if running_pid(dir) is not None:
        instance = read_instance(dir)
        if wait:
            wait_cql(dir, instance.cql_port, timeout)
        return instance
    if not re.fullmatch(r"\d+[kKmMgG]?", heap):
        raise CassandraError(f"bad heap size {heap!r} (e.g. 512M, 1G)", code="bad_setting")
    cql_port, storage_port = cql_port or free_port(), storage_port or free_port()
    jmx_port = free_port() if jmx_port == 0 else jmx_port
    for port, what in ((cql_port, "CQL"), (storage_port, "storage"), (jmx_port, "JMX")):
        if port is not None:
            _check_free(port, what)
    classpath = ensure_jars(cache)
    write_config(dir, cql_port, storage_port, seeds=seeds, dc=dc, commitlog_sync=commitlog_sync)
    pid = launch(dir, jvm_command(dir, classpath, heap, jmx_port), tie_to_parent)
    instance = Instance(str(dir), pid, cql_port, storage_port, jmx_port, cassandra_version(), heap, dc)
    (dir / "runner.json").write_text(json.dumps(asdict(instance), indent=2) + "\n")
    if wait:
        wait_cql(dir, cql_port, timeout)
    return instance


def read_instance(dir: Path) -> Instance:
    return Instance(**json.loads((dir.resolve() / "runner.json").read_text()))


def stop(dir: Path, timeout: float = 60) -> bool:
    """SIGTERM this directory's Cassandra, SIGKILL after ``timeout``; False if it was not running."""
    dir = dir.resolve()
    pid = running_pid(dir)
    if pid is None:
        _pid_file(dir).unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    if not _wait_gone(pid, dir, timeout):
        os.kill(pid, signal.SIGKILL)
        _wait_gone(pid, dir, 10)
    _reap(pid, dir)
    return True


def kill(dir: Path) -> bool:
    """SIGKILL this directory's Cassandra at once (a crash: no drain, no flush; tests of durability);
    False if it was not running."""
    dir = dir.resolve()
    pid = running_pid(dir)
    if pid is None:
        return False
    os.kill(pid, signal.SIGKILL)
    _wait_gone(pid, dir, 10)
    _reap(pid, dir)
    return True


def _reap(pid: int, dir: Path) -> None:
    """After it is gone: wait for our own child (no zombie) and forget its pid file."""
    child = _children.pop(pid, None)
    if child is not None:
        child.wait()
    _pid_file(dir).unlink(missing_ok=True)


def pause(dir: Path, paused: bool = True) -> None:
    """SIGSTOP (or SIGCONT) this directory's Cassandra: a store that hangs without closing a socket."""
    pid = running_pid(dir.resolve())
    if pid is None:
        raise CassandraError(f"no Cassandra is running in {dir}", code="cassandra_not_running")
    os.kill(pid, signal.SIGSTOP if paused else signal.SIGCONT)


def _wait_gone(pid: int, dir: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _is_ours(pid, dir):
            return True
        time.sleep(0.1)
    return False


# ---------------------------------------------------------------- CQL handshake

_OPTIONS, _SUPPORTED, _ERROR = 0x05, 0x06, 0x00
_HEADER = struct.Struct(">BBhBI")  # version, flags, stream, opcode, body length (protocol v3-v5 framing)


def _recv(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("CQL server closed the connection")
        buf += chunk
    return buf


def _string(body: bytes, at: int) -> tuple[str, int]:
    (n,) = struct.unpack_from(">H", body, at)
    return body[at + 2:at + 2 + n].decode(), at + 2 + n


def _string_multimap(body: bytes) -> dict[str, list[str]]:
    (count,), at, out = struct.unpack_from(">H", body, 0), 2, {}
    for _ in range(count):
        key, at = _string(body, at)
        (n,), at = struct.unpack_from(">H", body, at), at + 2
        values = []
        for _ in range(n):
            value, at = _string(body, at)
            values.append(value)
        out[key] = values
    return out


def cql_options(port: int, host: str = HOST, timeout: float = 2.0) -> dict[str, list[str]]:
    """Send a protocol-v4 OPTIONS frame; return the SUPPORTED map (CQL_VERSION, PROTOCOL_VERSIONS, ...)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(_HEADER.pack(0x04, 0, 1, _OPTIONS, 0))
        version, _flags, _stream, opcode, length = _HEADER.unpack(_recv(sock, _HEADER.size))
        if not version & 0x80 or length > 1 << 20:
            raise ConnectionError(f"not a CQL response (version byte {version:#x})")
        body = _recv(sock, length)
    if opcode == _ERROR:
        raise ConnectionError(f"CQL error: {_string(body, 4)[0]}")
    if opcode != _SUPPORTED:
        raise ConnectionError(f"unexpected CQL opcode {opcode:#x}")
    return _string_multimap(body)


def wait_cql(dir: Path, port: int, timeout: float = 180) -> dict[str, list[str]]:
    """Poll the CQL handshake until it answers; fail early if this directory's Cassandra dies."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return cql_options(port)
        except (OSError, struct.error):
            pass
        if running_pid(dir) is None:
            raise CassandraError(f"Cassandra exited during start-up\n{_log_tail(dir)}", code="cassandra_start_failed")
        if time.monotonic() > deadline:
            raise CassandraError(f"CQL port {port} did not answer in {timeout:.0f}s\n{_log_tail(dir)}",
                                 code="cassandra_start_failed")
        time.sleep(0.25)


# ---------------------------------------------------------------- status


def nodetool_command(dir: Path, args: Sequence[str], cache: Path | None = None) -> list[str]:
    """``nodetool <args>`` against this instance over its loopback JMX port."""
    dir = dir.resolve()
    instance = read_instance(dir)
    if not instance.jmx_port:
        raise CassandraError("this instance was started without JMX (--no-jmx)", code="cassandra_no_jmx")
    jpms = [flag for flag in JVM17_SERVER_OPTIONS if flag.startswith("--add-")]
    return [java_binary(), "-Xmx256m", *jpms, f"-Dlogback.configurationFile={dir / 'conf' / 'logback-tools.xml'}",
            f"-Duser.home={dir}", "-cp", ensure_jars(cache), "org.apache.cassandra.tools.NodeTool",
            "-h", HOST, "-p", str(instance.jmx_port), *args]


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def status(dir: Path) -> dict[str, object]:
    """What is known of the instance: running, pid, ports, RSS, and whether CQL answers."""
    dir = dir.resolve()
    pid = running_pid(dir)
    out: dict[str, object] = {"dir": str(dir), "running": pid is not None}
    if pid is None:
        return out
    try:
        instance = read_instance(dir)
    except (OSError, ValueError, TypeError):
        return {**out, "pid": pid, "cql": False, "error": "runner.json missing or unreadable"}
    out.update(asdict(instance), rss_mib=round((rss_kib(pid) or 0) / 1024))
    try:
        supported = cql_options(instance.cql_port)
        out.update(cql=True, protocol_versions=supported.get("PROTOCOL_VERSIONS", []))
    except (OSError, struct.error):
        out["cql"] = False
    return out


# ---------------------------------------------------------------- CLI


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog,
                                     description="Run a single-node Cassandra 5.0 from Maven jars.")
    parser.add_argument("command", choices=("up", "down", "status", "jars", "nodetool"),
                        help="nodetool: the arguments after the options go to nodetool")
    parser.add_argument("--dir", type=Path, default=Path(".parley/cassandra"), help="instance directory")
    parser.add_argument("--cql-port", type=int, default=9042, help="0 picks a free port")
    parser.add_argument("--storage-port", type=int, default=7000, help="0 picks a free port")
    parser.add_argument("--jmx-port", type=int, default=0, help="0 picks a free loopback port")
    parser.add_argument("--no-jmx", action="store_true", help="start no JMX server")
    parser.add_argument("--heap", default="1G", help="-Xms/-Xmx (default 1G)")
    parser.add_argument("--wait", action="store_true", help="up: wait until CQL answers")
    parser.add_argument("--commitlog-sync", choices=COMMITLOG_SYNC, default="group",
                        help="group (default): acked writes survive kill -9; periodic: benchmarks only")
    parser.add_argument("--timeout", type=float, default=180, help="seconds to wait for CQL / for a stop")
    return parser


def _run(args: argparse.Namespace, rest: list[str]) -> int:
    if args.command == "nodetool":
        return subprocess.run(nodetool_command(args.dir, rest)).returncode
    if args.command == "jars":
        print(ensure_jars())
        return 0
    if args.command == "down":
        print("stopped" if stop(args.dir, args.timeout) else "not running")
        return 0
    if args.command == "status":
        info = status(args.dir)
        print(json.dumps(info, indent=2))
        return 0 if info.get("cql") else 1
    if running_pid(args.dir) is not None:
        if args.wait:
            wait_cql(args.dir, read_instance(args.dir).cql_port, args.timeout)
        print(f"already running: {json.dumps(status(args.dir))}")
        return 0
    began = time.monotonic()
    inst = start(args.dir, args.cql_port, args.storage_port, args.heap, None if args.no_jmx else args.jmx_port,
                 args.wait, args.timeout, commitlog_sync=args.commitlog_sync)
    state = f"CQL answering after {time.monotonic() - began:.1f}s" if args.wait else "starting"
    print(f"cassandra {inst.version} pid {inst.pid}: {state}; cql {HOST}:{inst.cql_port}, "
          f"storage {inst.storage_port}, jmx {inst.jmx_port or 'off'}; dir {inst.dir}")
    return 0


def main(argv: Sequence[str] | None = None, prog: str = "python -m parley.tools.cassandra_runner") -> int:
    try:
        parser = _parser(prog)
        args, rest = parser.parse_known_args(argv)
        if rest and args.command != "nodetool":
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        return _run(args, rest)
    except ParleyError as err:
        print(f"cassandra_runner: {err.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
