"""The agent: one small process per local session that starts its commands.

It runs *inside* the session's sandbox (or on the host for the host sandbox), started
once at engage, so a command costs one fork and exec instead of a whole new
bubblewrap sandbox. This file is run as a script by the interpreter that runs the
requestor (``python -I -S -c <this source>``): it imports nothing from golem_tasks and
only built-in modules of the standard library, all at start-up, because with an image
it ``chroot``\\ s into the image's root file system, where no Python lives. (No
``json``, ``subprocess`` or ``socket``: their imports would make start-up ten times
slower.)

Protocol, over a ``SOCK_SEQPACKET`` socket, one :mod:`marshal` message per packet (both
ends run the same interpreter):

* agent -> requestor, once: ``{"ready": true}`` or ``{"error": "..."}`` (then it exits).
  With ``"relay": path`` in its config (a sandbox with ``outbound=``) the ready message
  also says ``"relay": port``: the 127.0.0.1 port of its forwarder to the filtering proxy.
* requestor -> agent, once: ``{"outputs": true}`` with two file descriptors attached
  (SCM_RIGHTS), the write ends of the session's stdout and stderr pipes. Every command
  gets them as its 1 and 2; the agent keeps them open between commands, so a command
  costs no new pipes and the requestor wakes once for it (at its exit message).
* requestor -> agent: ``{"run": argv, "env": {...}, "cwd": "..."}``.
* requestor -> agent: ``{"kill": true}``: kill the running command and all it started.
* agent -> requestor, once per run: ``{"exit": code, "unread": bool}`` (negative:
  killed by that signal) or ``{"failed": errno, "reason": "..."}`` when the program
  could not start. It is sent only once every process the command started is dead
  and reaped, so every byte the command wrote is in the pipes by then; ``unread``
  says whether any of it is still there (``FIONREAD``, given by the requestor in
  the config as ``"fionread"``, on the write ends).
* requestor -> agent: ``{"stop": true}``: kill everything, answer ``{"stopped": true}``
  and exit. End of file (the requestor died) does the same without the answer.

The host sandbox starts one *zygote* per provider instead (``{"zygote": true}``): it
forks a session agent for each ``{"spawn": config}`` message, whose attached socket
then speaks the protocol above.

Killing "everything the command started" includes processes that called ``setsid``
or double-forked: the agent is a child subreaper (``PR_SET_CHILD_SUBREAPER``), so every
orphan of a command is re-parented to it, and when a command ends it kills all of
its own descendants. In a PID namespace (bubblewrap) that is ``kill(-1)``, which
reaches every process of the namespace but the agent and bubblewrap's init; on the
host it walks ``/proc`` (only when something is left over: a plain command ends with
no child of the agent alive, and then there is nothing to walk).
"""

from __future__ import annotations

import _signal
import _socket
import _thread
import ctypes
import marshal
import mmap
import os
import select
import sys

PR_SET_CHILD_SUBREAPER = 36
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
CAP_SETPCAP = 8
CAP_SYS_CHROOT = 18
_CAP_VERSION_3 = 0x20080522
_MAX_MESSAGE = 1 << 20
_FD_BYTES = 4

_libc = ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, arg: int) -> None:
    if _libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(%d) failed" % option)


def _drop_capabilities() -> None:
    """Give up CAP_SYS_CHROOT (and the CAP_SETPCAP needed to give it up) after the
    chroot, so a command cannot chroot back out of the image."""
    _prctl(PR_CAPBSET_DROP, CAP_SYS_CHROOT)
    _prctl(PR_CAPBSET_DROP, CAP_SETPCAP)
    _libc.prctl(PR_CAP_AMBIENT, ctypes.c_ulong(PR_CAP_AMBIENT_CLEAR_ALL), 0, 0, 0)
    header = (ctypes.c_uint32 * 2)(_CAP_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable x 2 words: all empty
    if _libc.capset(header, data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


def _send(sock: _socket.socket, message: dict) -> None:
    sock.send(marshal.dumps(message))


def _receive(sock: _socket.socket) -> tuple:
    """(message or None at EOF, received file descriptors)."""
    data, ancillary, _, _ = sock.recvmsg(_MAX_MESSAGE, _socket.CMSG_SPACE(2 * _FD_BYTES))
    fds = []
    for level, kind, payload in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            whole = len(payload) - len(payload) % _FD_BYTES
            fds += [int.from_bytes(payload[i:i + _FD_BYTES], sys.byteorder) for i in range(0, whole, _FD_BYTES)]
    return (marshal.loads(data) if data else None), fds


def _descendants(root: int) -> list:
    """Pids of every live descendant of ``root``, from /proc."""
    parents: dict = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry, "rb") as stat:
                    fields = stat.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            parents.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in parents.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def _find(program: str, env: dict) -> str:
    """The file ``program`` names, searched on the command's PATH as execvp() would."""
    if "/" in program:
        return program
    denied = False
    for directory in env.get("PATH", "/usr/bin:/bin").split(":"):
        candidate = os.path.join(directory or ".", program)
        if os.path.isfile(candidate):
            if os.access(candidate, os.X_OK):
                return candidate
            denied = True
    raise OSError(13 if denied else 2, os.strerror(13 if denied else 2))


#: Python ignores SIGPIPE and SIGXFSZ; a program expects their defaults.
_DEFAULT_SIGNALS = tuple(getattr(_signal, name) for name in ("SIGPIPE", "SIGXFSZ") if hasattr(_signal, name))


def _pidfd_works() -> bool:
    """pidfd_open (Linux >= 5.3, Python >= 3.9) may still be refused by a seccomp filter."""
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    return True


class _RequestorGone(Exception):
    """End of file on the socket while a command ran."""


class Agent:
    def __init__(self, sock: _socket.socket, config: dict) -> None:
        self.sock = sock
        self.pidns = config.get("pidns", False)
        self.child: int | None = None  # pid of the running command
        self.stopping = False
        self.status: dict | None = None  # its exit message once it ended
        self.leftover = True  # whether a child may be alive after the command ended
        # A pidfd tells when the command exits without a signal handler; where the
        # kernel has none, SIGCHLD wakes a pipe instead.
        self.pidfds = bool(config.get("pidfd", True)) and _pidfd_works()
        self.wake_r = -1
        if not self.pidfds:
            self.wake_r, wake_w = os.pipe()
            os.set_blocking(self.wake_r, False)
            os.set_blocking(wake_w, False)
            _signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
            _signal.signal(_signal.SIGCHLD, lambda *_: None)
        self.devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        self.outputs: tuple = ()  # the write ends of the session's stdout and stderr pipes
        self.actions: list = []  # what posix_spawn does in the child: 0, 1 and 2 from devnull and the pipes
        # An anonymous mapping: the pages no message reaches are never touched.
        self.buffer = mmap.mmap(-1, _MAX_MESSAGE)
        self.fionread = config.get("fionread")  # the ioctl that counts a pipe's unread bytes
        self.relay_port = _start_relay(config["relay"]) if config.get("relay") else None

    def receive(self) -> dict | None:
        """The next message (None at end of file), read into the agent's own buffer:
        ``recv(_MAX_MESSAGE)`` would map and unmap a fresh megabyte per message."""
        size = self.sock.recv_into(self.buffer)
        return marshal.loads(memoryview(self.buffer)[:size]) if size else None

    def kill_all(self) -> None:
        """SIGKILL every process the commands started, then reap them all."""
        while self.reap():
            if self.pidns:
                try:
                    os.kill(-1, _signal.SIGKILL)  # every process of the namespace but init and us
                except ProcessLookupError:
                    pass
            else:
                for pid in _descendants(os.getpid()):
                    try:
                        os.kill(pid, _signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            self.reap(block=True)

    def reap(self, block: bool = False) -> bool:
        """Reap dead children (waiting for one when ``block``); True while any is left."""
        while True:
            try:
                pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
            except ChildProcessError:
                return False
            if pid == 0:
                return True
            if pid == self.child:
                self.child = None
                self.status = {"exit": os.waitstatus_to_exitcode(status)}
            block = False

    def start(self, message: dict) -> dict | None:
        """Start the command; its failure to start as a message, else None."""
        actions = self.actions
        try:
            argv, env = message["run"], message["env"]
            try:
                os.chdir(message["cwd"])  # posix_spawn has no chdir: the child inherits ours
            except OSError as exc:
                return {"failed": exc.errno or 0,
                        "reason": "cannot enter the working directory %s: %s" % (message["cwd"], exc.strerror)}
            path = _find(argv[0], env)
            try:
                pid = os.posix_spawn(path, argv, env, setsid=True, setsigdef=_DEFAULT_SIGNALS, file_actions=actions)
            except OSError as exc:
                if exc.errno != 8:  # ENOEXEC: a script without #!, which execvp() hands to sh
                    raise
                pid = os.posix_spawn("/bin/sh", ["sh", path, *argv[1:]], env, setsid=True,
                                     setsigdef=_DEFAULT_SIGNALS, file_actions=actions)
        except OSError as exc:
            return {"failed": exc.errno or 0, "reason": exc.strerror or str(exc)}
        self.child = pid
        self.status = None
        return None

    def run(self, message: dict) -> bool:
        failed = self.start(message)
        if failed is not None:
            _send(self.sock, failed)
            return True
        exited = os.pidfd_open(self.child) if self.pidfds and self.child is not None else self.wake_r
        try:
            self.wait(exited)
        except _RequestorGone:
            return False
        finally:
            if self.pidfds:
                os.close(exited)
        # The command ended: nothing it started may outlive it (a plain command left
        # no child behind, as its own reap found: then there is nothing to kill).
        if self.leftover:
            self.kill_all()
        ended = dict(self.status or {"exit": -_signal.SIGKILL})
        ended["unread"] = self.unread()
        _send(self.sock, ended)
        return True

    def unread(self) -> bool:
        """Whether the pipes still hold output the requestor has not read: when they
        do not, it need not look once more after the exit message."""
        if self.fionread is None:
            return True
        count = ctypes.c_int()
        for fd in self.outputs:
            if _libc.ioctl(fd, self.fionread, ctypes.byref(count)) != 0 or count.value:
                return True
        return False

    def wait(self, exited: int) -> None:
        """Until the command exits (``exited`` becomes readable), obeying kill messages."""
        while self.child is not None:
            ready, _, _ = select.select([self.sock.fileno(), exited], [], [])
            if exited in ready:
                if not self.pidfds:
                    try:
                        os.read(exited, 512)
                    except BlockingIOError:
                        pass
                self.leftover = self.reap()
            if self.sock.fileno() in ready:
                message = self.receive()
                if message is None:  # the requestor went away
                    self.kill_all()
                    raise _RequestorGone
                if message.get("kill") or message.get("stop"):
                    self.stopping = self.stopping or bool(message.get("stop"))
                    self.kill_all()
                    self.leftover = False

    def serve(self) -> None:
        hello: dict = {"ready": True}
        if self.relay_port is not None:
            hello["relay"] = self.relay_port
        _send(self.sock, hello)
        while True:
            if self.outputs:  # no descriptors come any more: no ancillary data to parse
                message, fds = self.receive(), []
            else:
                message, fds = _receive(self.sock)
            for fd in fds:  # only the command's 1 and 2 may hold them
                os.set_inheritable(fd, False)
            if message is None:
                self.kill_all()
                return
            if self.stopping or message.get("stop"):
                self.kill_all()
                _send(self.sock, {"stopped": True})
                return
            if message.get("outputs") and len(fds) == 2:
                for fd in self.outputs:
                    os.close(fd)
                self.outputs = tuple(fds)
                # posix_spawn, not fork: the C library's vfork-like spawn does not copy the
                # agent's memory, which makes a short command several times cheaper.
                self.actions = [(os.POSIX_SPAWN_DUP2, self.devnull, 0), (os.POSIX_SPAWN_DUP2, fds[0], 1),
                                (os.POSIX_SPAWN_DUP2, fds[1], 2)]
                continue
            for fd in fds:
                os.close(fd)
            if "run" not in message:
                continue  # a kill that came after the command ended: nothing to do
            if not self.outputs:
                _send(self.sock, {"failed": 9, "reason": "the agent was given no output pipes"})
                continue
            if not self.run(message):
                return


def _start_relay(path: str) -> int:
    """The outbound forwarder of a sandbox without network: a listener on the sandbox's
    own 127.0.0.1 whose connections are relayed, byte for byte, to the requestor's
    filtering proxy on the unix socket ``path`` (bound into the sandbox). Commands find
    it through ``http_proxy``; it is their only way out. Returns its port."""
    listener = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    _thread.stack_size(256 * 1024)  # few, small threads: keep clear of RLIMIT_DATA
    _thread.start_new_thread(_relay_accept, (listener, path))
    return listener.getsockname()[1]


def _relay_accept(listener: _socket.socket, path: str) -> None:
    while True:
        fd, _ = listener._accept()  # type: ignore[attr-defined]  # _socket has no accept(); fd is CLOEXEC
        client = _socket.socket(fileno=fd)
        _thread.start_new_thread(_relay_one, (client, path))


def _relay_one(client: _socket.socket, path: str) -> None:
    upstream = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        upstream.connect(path)
    except OSError:
        client.close()
        upstream.close()
        return
    ends = {client: upstream, upstream: client}
    while ends:
        ready, _, _ = select.select(list(ends), [], [])
        for source in ready:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            target = ends[source]
            if data:
                try:
                    target.sendall(data)
                    continue
                except OSError:
                    pass
            del ends[source]
            try:
                target.shutdown(_socket.SHUT_WR)
            except OSError:
                pass
    client.close()
    upstream.close()


def setup(config: dict) -> None:
    """Limits, CPUs and the image root, before any command runs; all inherited."""
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    if config.get("memory") is not None:
        import resource  # noqa: PLC0415 - imported before the chroot, only when needed
        resource.setrlimit(resource.RLIMIT_DATA, (config["memory"], config["memory"]))
    if config.get("cpus"):
        os.sched_setaffinity(0, config["cpus"])
    if config.get("chroot"):
        os.chroot(config["chroot"])
        os.chdir("/")
        _drop_capabilities()


def zygote(sock: _socket.socket) -> None:
    """Fork a session agent per ``{"spawn": config}`` message (its socket attached),
    until end of file. Used by the host sandbox: a fork of this already started
    process costs a millisecond where starting an interpreter costs tens."""
    _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
    _send(sock, {"ready": True})
    while True:
        message, fds = _receive(sock)
        while True:  # reap agents that ended
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        if message is None:
            return
        if "spawn" not in message or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            continue
        if os.fork() == 0:
            sock.close()
            try:
                agent_main(_socket.socket(fileno=fds[0]), message["spawn"])
            finally:
                os._exit(0)
        os.close(fds[0])


def agent_main(sock: _socket.socket, config: dict) -> None:
    """Set up, then serve one session on ``sock``."""
    os.set_inheritable(sock.fileno(), False)
    try:
        setup(config)
        agent = Agent(sock, config)
    except OSError as exc:
        _send(sock, {"error": "%s %s" % (exc.strerror or exc, getattr(exc, "filename", "") or "")})
        return
    agent.serve()


def main() -> None:
    config = marshal.loads(bytes.fromhex(sys.argv[1]))
    sock = _socket.socket(fileno=config["fd"])
    os.set_inheritable(sock.fileno(), False)
    if config.get("zygote"):
        zygote(sock)
    else:
        agent_main(sock, config)


if __name__ == "__main__":
    main()
