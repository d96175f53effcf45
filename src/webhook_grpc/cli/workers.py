"""`serve --workers N`: N server processes sharing the gRPC and REST ports.

One Python process spends about 3 ms of CPU per PublishEvent, half of it in grpc.aio and the
per-call path (docs/PERFORMANCE.md), and is bound by one core. The API is stateless, so `serve
--workers N` runs N copies of it: each binds the same gRPC and REST addresses with SO_REUSEPORT
and the kernel spreads new connections over them. This process only supervises:

* it checks the addresses and migrates the database once, then forks the workers, each a whole
  `serve` on the same settings. Forking is safe here because this process never creates a gRPC
  object, an event loop, a thread or a database connection it keeps (gRPC's own multiprocessing
  example forks the same way, before any server exists), and it makes a worker's start cheap:
  the modules are imported once, here;
* every worker runs a dispatcher when `serve_dispatcher` is on (dispatchers share one PostgreSQL
  queue by design) and the feed (PostgreSQL's NOTIFY reaches every process); worker 0 alone runs
  the retention purge and refreshes the queue gauges;
* `metrics_listen`: worker i serves its own counters on that port + i (port 0: each its own);
  scrape them all and sum;
* SIGTERM or SIGINT is passed to every worker, which finishes its in-flight work as `serve`
  does; one still running after the grace period and a margin is killed;
* a worker that exits on its own (a crash, a failed start) stops the others, and `serve` exits
  non-zero: whatever runs `serve` (systemd, Kubernetes) restarts the whole service, rather than
  this process hiding a crash loop; a supervisor that dies (SIGKILL, the OOM killer) takes its
  workers with it (SIGTERM from the kernel, on Linux).

SQLite serves one process (storage/process_lock.py), so more than one worker is refused there."""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess

from webhook_grpc import logs
from webhook_grpc.config import Settings
from webhook_grpc.storage.urls import is_sqlite

log = logging.getLogger("webhook_grpc")

# Beyond the grace period and the shutdown margin of each worker: how long this process waits
# for the workers to exit after passing SIGTERM on, before it kills them.
KILL_MARGIN = 5.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
PR_SET_PDEATHSIG = 1


def run_workers(settings: Settings, margin: float) -> int:
    """Supervise `settings.server.workers` server processes until a signal or a worker's exit;
    the exit code: 0 after a signal and a clean stop, non-zero when a worker stopped first."""
    from webhook_grpc.app import StartupError, check_api_listen
    from webhook_grpc.encryption import resolve_box
    from webhook_grpc.storage import migrate

    count = settings.server.workers
    url = settings.database.database_url
    if is_sqlite(url):
        raise StartupError(
            f"workers = {count} needs PostgreSQL: a SQLite database serves one process (it is "
            "locked by the process using it). Use workers = 1 on SQLite."
        )
    check_api_listen(settings.server)
    reserved: list[socket.socket] = []
    try:
        listen = _fixed_port(settings.server.listen, reserved)
        http_listen = (
            _fixed_port(settings.server.http_listen, reserved)
            if settings.server.http_listen
            else ""
        )
        migrate.upgrade(url, "head", resolve_box(settings.secrets.secret_key, url))
        # Held back until the supervisor handles them: a SIGTERM while the workers are being
        # forked must neither kill this process alone nor reach a worker before its own
        # handlers are in place (each worker unblocks them when it starts).
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        workers = [
            _start(
                settings.model_copy(
                    update={
                        "workers": 1,
                        "listen": listen,
                        "http_listen": http_listen,
                        "metrics_listen": _metrics_listen(settings.server.metrics_listen, index),
                    }
                ),
                index,
            )
            for index in range(count)
        ]
        return _supervise(workers, settings.delivery.delivery_timeout.total_seconds() + margin)
    finally:
        for held in reserved:
            held.close()


def _fixed_port(address: str, reserved: list[socket.socket]) -> str:
    """`address` itself, or with port 0 a port chosen now: every worker must bind the same one.
    The chosen port stays bound here (with SO_REUSEPORT, never listening) so that nothing else
    takes it; only listening sockets receive connections."""
    host, _, port = address.rpartition(":")
    if int(port) != 0:
        return address
    bare = host.strip("[]")
    family = socket.AF_INET6 if ":" in bare else socket.AF_INET
    holder = socket.socket(family, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind((bare, 0))
    reserved.append(holder)
    return f"{host}:{holder.getsockname()[1]}"


def _metrics_listen(address: str, index: int) -> str:
    if not address:
        return ""
    host, _, port = address.rpartition(":")
    return f"{host}:{int(port) + index if int(port) else 0}"


def _start(settings: Settings, index: int) -> BaseProcess:
    process = multiprocessing.get_context("fork").Process(
        target=_worker, args=(settings, index, os.getpid()), name=f"webhook-grpc worker {index}"
    )
    process.start()
    log.info("started worker %d (pid %d)", index, process.pid)
    return process


def _supervise(workers: list[BaseProcess], grace: float) -> int:
    """Wait for a signal or for a worker to exit; then stop the others. The exit code."""
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    received: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        received.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    old_wakeup = signal.set_wakeup_fd(wake_write)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    try:
        sentinels = {worker.sentinel: worker for worker in workers}
        ended: list[BaseProcess] = []
        while not received and not ended:
            ready = wait([wake_read, *sentinels])
            ended = [sentinels[fd] for fd in ready if isinstance(fd, int) and fd in sentinels]
        for worker in ended:
            worker.join()
            log.error("%s (pid %d) %s; stopping the others", worker.name, worker.pid, _how(worker))
        if received and not ended:
            log.info("shutting down: stopping %d workers", len(workers))
        _stop(workers, grace)
    finally:
        signal.set_wakeup_fd(old_wakeup)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(wake_read)
        os.close(wake_write)
    if ended:
        codes = [worker.exitcode for worker in ended]
        return next((code for code in codes if code and code > 0), 1)
    # A worker still starting when the signal came ends by SIGTERM itself.
    clean = (0, -signal.SIGTERM)
    return 0 if all(worker.exitcode in clean for worker in workers) else 1


def _how(worker: BaseProcess) -> str:
    code = worker.exitcode or 0
    return f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with {code}"


def _stop(workers: list[BaseProcess], grace: float) -> None:
    """SIGTERM to every worker still running; SIGKILL to those still running after `grace`."""
    for worker in workers:
        if worker.is_alive() and worker.pid is not None:
            os.kill(worker.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace + KILL_MARGIN
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
        if worker.is_alive():
            log.error("%s (pid %d) did not stop; killing it", worker.name, worker.pid)
            worker.kill()
            worker.join()


def _end_with(supervisor: int) -> None:
    """SIGTERM this worker when the supervisor dies, however it dies (Linux: PR_SET_PDEATHSIG):
    an orphaned worker would go on serving on the shared port beside a restarted service."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
    except (OSError, AttributeError):  # not Linux: the supervisor's SIGTERM only
        return
    if os.getppid() != supervisor:  # it died before the request
        os.kill(os.getpid(), signal.SIGTERM)


def _worker(settings: Settings, index: int, supervisor: int) -> None:
    """A worker process: a whole `serve` sharing the ports (multiprocessing's target)."""
    from webhook_grpc.app import App, Roles

    from . import event_loop, server

    # Blocked since the fork (run_workers). Until serve installs its handlers, SIGTERM ends the
    # worker at once and SIGINT (a Ctrl-C reaches the whole process group) is left to the
    # supervisor, which passes SIGTERM on.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _end_with(supervisor)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    logs.configure(settings.server.log_level, settings.server.log_format)
    roles = Roles(migrate=False, retention=index == 0, queue_metrics=index == 0, worker=index)
    try:
        event_loop.run(server.serve(App(settings, roles)), margin=server.SHUTDOWN_MARGIN)
    except Exception as error:
        message, code = server.fatal(error)
        log.error("worker %d: %s", index, message)
        sys.exit(code)
