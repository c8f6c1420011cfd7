"""The warm Python's server: runs in the step interpreter, started with ``python -c``, this
file's text, its socket's descriptor and the source of ``enter_limits`` (it imports nothing
of kfdash, which that interpreter may not have; ``dashboard.host_limits`` has that source).

It imports the KFP executor once, then forks one child per step request. A child
starts its own session (a process group the engine can signal), takes the step's
stdout/stderr from the descriptor the request carries, enters the step's memory limit (its
cgroup, or RLIMIT_AS) before anything of the step runs, changes to the step's folder and
environment, and runs ``python -m <module> <args>`` as a fresh interpreter would. The
server reports each child's pid and, when it reaps it, its exit code. When the engine goes
away (end of file on the socket) every child still running is killed: a step whose
output pipe is gone has nobody to report to.

Messages are one JSON object per SOCK_SEQPACKET packet; a request too big for one (the
executor input can be large) names a file holding it instead.
"""

import contextlib
import json
import os
import runpy
import select
import signal
import socket
import sys
import traceback


def main() -> None:
    sock = socket.socket(fileno=int(sys.argv[1]))
    entry: dict = {}
    exec(sys.argv[2], entry)  # defines enter_limits(spec)
    try:
        import argparse

        import kfp
        import kfp.dsl.executor_main  # what every step imports first

        # What the executor's first use of argparse imports and reads (locale, gettext).
        argparse.ArgumentParser(prog="warm-up").parse_args([])
        hello = {"ready": True, "kfp": getattr(kfp, "__version__", "")}
    except Exception as exc:  # the interpreter has no usable kfp: the engine starts fresh ones
        hello = {"ready": False, "error": f"{type(exc).__name__}: {exc}"}
    sock.send(json.dumps(hello).encode())
    if not hello["ready"]:
        return
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: dict[int, int] = {}  # pid -> request id
    try:
        while True:
            try:
                readable, _, _ = select.select([sock, wake_read], [], [])
            except InterruptedError:
                continue
            if wake_read in readable:
                while True:
                    try:
                        if not os.read(wake_read, 512):
                            break
                    except BlockingIOError:
                        break
            _reap(sock, children)
            if sock in readable:
                message, fds, _, _ = socket.recv_fds(sock, 65536, 2)
                if not message:
                    break
                request = json.loads(message)
                pid = _fork(request, fds, sock, wake_read, wake_write, entry["enter_limits"])
                children[pid] = request["id"]
                sock.send(json.dumps({"id": request["id"], "pid": pid}).encode())
    finally:
        for pid in children:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)


def _reap(sock, children) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        request_id = children.pop(pid, None)
        if request_id is not None:
            sock.send(json.dumps({"id": request_id,
                                  "exit": os.waitstatus_to_exitcode(status)}).encode())


def _fork(request_message, fds, sock, wake_read, wake_write, enter_limits) -> int:
    request = request_message["request"]
    if isinstance(request, str):  # too big for a message: in a file
        with open(request) as handle:
            request = json.load(handle)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        for fd in fds:
            os.close(fd)
        return pid
    code = 127
    try:
        os.setsid()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        sock.close()
        os.close(wake_read)
        os.close(wake_write)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(fds[0], 1)
        os.dup2(fds[0], 2)
        for fd in (null, *fds):
            os.close(fd)
        if request.get("limits"):
            try:
                enter_limits(request["limits"])
            except OSError as exc:
                print(f"kfdash: cannot enter the step's memory limit: {exc}", file=sys.stderr)
                raise
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        extra = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
        sys.path[1:1] = extra
        sys.argv = [request["module"], *request["args"]]
        sys.modules.pop(request["module"], None)  # it runs as __main__, as with python -m
        if request["env"].get("PYTHONUNBUFFERED"):
            sys.stdout.reconfigure(write_through=True)
            sys.stderr.reconfigure(write_through=True)
        code = 0
        try:
            runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
        except SystemExit as exc:
            code = _exit_code(exc.code)
        except BaseException:
            traceback.print_exc()
            code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _exit_code(value) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    print(value, file=sys.stderr)
    return 1


if __name__ == "__main__":
    main()
