"""An emulated ARM64 (aarch64) userland for the bridge's ARM64 executor on an x86-64 host.

How it works, without root and without binfmt_misc (which is global to the host kernel and is
neither mounted nor touched here):

- `build_rootfs` unpacks Debian's `busybox-static:arm64` into a folder and adds the applet
  symlinks, a `/bin/bash` shim, `/etc/passwd` and `/etc/group`: a tiny aarch64 userland.
- `Arm64Userland.wrap` turns an action's argv into `proot -q qemu-aarch64-static -r ROOTFS ...`.
  proot (ptrace) makes ROOTFS look like `/`, bind-mounts the action's directories at the same
  absolute paths, and starts every program that is exec'd inside, including the first one,
  under qemu's user-mode emulator. `uname -m` inside prints `aarch64`.
- On a real aarch64 host, `NativeRunner` runs the action as it is.

Quirks of proot 5.1.0 (Debian 12), as measured here:

- It is built without its seccomp accelerator (`proot -V`: `seccomp_filter = no`), so every
  system call of the guest is traced and `PROOT_NO_SECCOMP` changes nothing; it is not set.
- It ignores `PROOT_TMP_DIR` and `TMPDIR`: its loader (`/tmp/prooted-PID-*`, executed) and its
  glue folder (`/tmp/proot-PID-*`) always go to the host's `/tmp`, which must therefore be
  writable and not mounted noexec. A SIGKILLed proot leaves them behind (a few KiB each):
  `Arm64Userland.cleanup_killed(pid)` removes them.
- It waits for every process of the guest, background ones included, before it exits, and a
  SIGKILL to proot alone leaves the guest running, no longer traced: kill the whole process
  group (`start_new_session=True` and `os.killpg`).
- It has no `--`: an argv[0] starting with `-` would be read as an option (refused here).
- A bare argv[0] (no `/`) is looked up on the `PATH` of the environment proot is given; with
  no `PATH` at all proot fails ("'x' not found", exit 1). A missing program given by path also
  exits 1 with a `proot error:` line, not 127.
- With `-q`, proot also shows the host's `/` at `/host-rootfs` inside (it needs it to find
  qemu). This is a build userland, not a security boundary.
- The environment given to proot reaches the guest unchanged (proot itself is a dynamically
  linked x86-64 program, so an action's LD_PRELOAD also reaches proot's own loader).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Sequence

from reapi_bridge.executor.wrappers import CommandWrapper

PACKAGE = "busybox-static:arm64"
INSTALL_HINT = "run .ci/install-arm64-userland-deps"
# Bump when the layout made by build_rootfs changes, so existing rootfs folders are rebuilt.
LAYOUT_VERSION = 1
STAMP = Path("etc") / "reapi-bridge-userland.json"
SKELETON = ("bin", "usr/bin", "sbin", "usr/sbin", "tmp", "dev", "proc", "etc", "work", "root")
REQUIRED_APPLETS = ("bin/sh", "bin/cat", "bin/echo", "bin/uname", "bin/true", "usr/bin/env", "usr/bin/test")
QEMU_NAMES = ("qemu-aarch64-static", "qemu-aarch64")
BASH_VERSION_LINE = "GNU bash, version 5.2.15(1)-release (aarch64-unknown-linux-gnu) -- busybox ash shim"

BASH_SHIM = f"""#!/bin/sh
# Not bash: busybox ash standing in for it. Answers `bash --version` like bash does (Pants'
# bash discovery runs it), drops the bash-only startup flags ash does not know, and runs the
# rest with /bin/sh.
while [ $# -gt 0 ]; do
  case "$1" in
    --version) echo "{BASH_VERSION_LINE}"; exit 0 ;;
    --norc|--noprofile|--posix|--login|-l) shift ;;
    *) break ;;
  esac
done
exec /bin/sh "$@"
"""

PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnobody:x:65534:\n"


class UserlandError(RuntimeError):
    """The aarch64 userland cannot be built, found or run."""


def native_aarch64() -> bool:
    """True on a real aarch64 host, where actions run natively."""
    return platform.machine().lower() in ("aarch64", "arm64")


def _which(*names: str, what: str) -> Path:
    for name in names:
        found = shutil.which(name)
        if found:
            return Path(found)
    raise UserlandError(f"{what}: none of {', '.join(names)} is on PATH; {INSTALL_HINT}")


def _run(argv: Sequence[str], *, what: str, cwd: Optional[Path] = None, timeout: float = 300) -> str:
    try:
        proc = subprocess.run(
            list(argv), cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UserlandError(f"{what}: could not run {argv[0]}: {exc}") from exc
    if proc.returncode != 0:
        raise UserlandError(
            f"{what}: `{' '.join(argv)}` exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()}"
        )
    return proc.stdout


def read_stamp(rootfs: Path) -> Optional[dict]:
    """The stamp build_rootfs wrote into a complete rootfs (package, version, layout), or None."""
    try:
        stamp = json.loads((Path(rootfs) / STAMP).read_text())
    except (OSError, ValueError):
        return None
    if (
        not isinstance(stamp, dict)
        or stamp.get("layout") != LAYOUT_VERSION
        or stamp.get("package") != PACKAGE
    ):
        return None
    if not (Path(rootfs) / "bin" / "busybox").is_file():
        return None
    return stamp


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_rootfs(dest: Path) -> Path:
    """Builds the aarch64 userland at `dest` unless a complete one of this layout is there.

    Idempotent and atomic: the tree is built in a temporary folder next to `dest` and renamed
    into place at the end, with a stamp (etc/reapi-bridge-userland.json) naming the busybox
    package version; concurrent callers serialise on a lock file next to `dest`. An existing
    `dest` without a valid stamp is replaced. Downloads one .deb (~1 MiB) with apt-get.
    """
    dest = Path(dest).absolute()
    if read_stamp(dest) is not None:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _locked(dest.parent / f".{dest.name}.lock"):
        if read_stamp(dest) is not None:
            return dest
        apt_get = _which("apt-get", what="downloading busybox-static:arm64 needs apt-get")
        dpkg = _which("dpkg", what="unpacking busybox-static:arm64 needs dpkg")
        dpkg_deb = _which("dpkg-deb", what="reading the busybox package version needs dpkg-deb")
        # Listing busybox's applets runs the aarch64 busybox: natively, or under qemu.
        emulator = (
            [] if native_aarch64() else [str(_which(*QEMU_NAMES, what="running aarch64 busybox needs qemu"))]
        )
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.build-", dir=dest.parent))
        try:
            download = staging / "download"
            download.mkdir()
            # As root, apt would try to drop to its _apt user, which cannot write into this
            # private folder, and says so on stderr; it then downloads as root anyway.
            sandbox_opt = ["-o", "APT::Sandbox::User=root"] if os.geteuid() == 0 else []
            try:
                _run(
                    [str(apt_get), *sandbox_opt, "download", PACKAGE],
                    cwd=download,
                    what=f"apt-get download {PACKAGE}",
                )
            except UserlandError as exc:
                raise UserlandError(
                    f"{exc}\n(is the arm64 dpkg architecture enabled? {INSTALL_HINT})"
                ) from exc
            debs = sorted(download.glob("*.deb"))
            if len(debs) != 1:
                raise UserlandError(f"apt-get download {PACKAGE} left {len(debs)} .deb files in {download}")
            version = _run([str(dpkg_deb), "-f", str(debs[0]), "Version"], what="dpkg-deb -f").strip()
            rootfs = staging / "rootfs"
            _run([str(dpkg), "-x", str(debs[0]), str(rootfs)], what=f"dpkg -x {debs[0].name}")
            _populate(rootfs, emulator)
            (rootfs / STAMP).write_text(
                json.dumps({"package": PACKAGE, "version": version, "layout": LAYOUT_VERSION}, indent=2)
                + "\n"
            )
            rootfs.chmod(0o755)
            if dest.exists() or dest.is_symlink():
                os.rename(dest, staging / "previous")  # removed with the staging folder
            os.rename(rootfs, dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return dest


def _populate(rootfs: Path, emulator: List[str]) -> None:
    busybox = rootfs / "bin" / "busybox"
    if not busybox.is_file():
        raise UserlandError(f"{PACKAGE} did not provide bin/busybox in {rootfs}")
    for d in SKELETON:
        (rootfs / d).mkdir(parents=True, exist_ok=True)
    (rootfs / "tmp").chmod(0o1777)

    try:
        listed = _run([*emulator, str(busybox), "--list-full"], what="busybox --list-full").split()
    except UserlandError:  # an older busybox: bare names, all placed in /bin
        listed = [
            "bin/" + name for name in _run([*emulator, str(busybox), "--list"], what="busybox --list").split()
        ]
    applets = [a.strip("/") for a in listed if a.strip("/") and ".." not in a.split("/")]
    if not applets:
        raise UserlandError("busybox listed no applets")
    for applet in applets:
        link = rootfs / applet
        if applet == "bin/busybox" or link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        # Relative links, so the tree also reads right from the host.
        link.symlink_to(os.path.relpath(busybox, link.parent))

    bash = rootfs / "bin" / "bash"
    if bash.exists() or bash.is_symlink():
        bash.unlink()  # a busybox built with a `bash` applet: the shim answers --version better
    bash.write_text(BASH_SHIM)
    bash.chmod(0o755)
    usr_bash = rootfs / "usr" / "bin" / "bash"
    if not (usr_bash.exists() or usr_bash.is_symlink()):
        usr_bash.symlink_to("../../bin/bash")

    (rootfs / "etc" / "passwd").write_text(PASSWD)
    (rootfs / "etc" / "group").write_text(GROUP)

    missing = [a for a in REQUIRED_APPLETS if not (rootfs / a).exists()]
    if missing:
        raise UserlandError(f"the busybox in {PACKAGE} lacks {', '.join(missing)}")


@dataclass(frozen=True)
class Arm64Userland:
    """Runs commands in the aarch64 rootfs under proot + qemu-aarch64 (see the module doc)."""

    rootfs: Path
    qemu: Path
    proot: Path
    # proot's own exit status is that of the guest process that ended last (see ActionRunner).
    exit_status_is_last_process = True

    @classmethod
    def detect(cls, rootfs: Path) -> "Arm64Userland":
        rootfs = Path(rootfs).absolute()
        if read_stamp(rootfs) is None:
            raise UserlandError(
                f"{rootfs} is not a complete aarch64 userland: call build_rootfs({str(rootfs)!r})"
            )
        return cls(
            rootfs=rootfs,
            qemu=_which(*QEMU_NAMES, what="the aarch64 userland needs qemu-user-static"),
            proot=_which("proot", what="the aarch64 userland needs proot"),
        )

    def wrap(
        self, argv: Sequence[str], *, cwd: Path, binds: Sequence[Path], tmp: Optional[Path] = None
    ) -> List[str]:
        """The host argv that runs `argv` inside the userland, in `cwd` (a path inside).

        Each of `binds` (absolute host folders) is visible at the same absolute path inside;
        /dev and /proc are the host's; /tmp is the host folder `tmp` (default: the host /tmp).
        The environment is whatever the caller gives the returned command (proot passes it
        on); the caller's own cwd does not matter. Raises ValueError for an argv or a path
        proot cannot take, and UserlandError if `cwd` does not exist inside.
        """
        argv = [str(a) for a in argv]
        if not argv or not argv[0]:
            raise ValueError("empty argv")
        if argv[0].startswith("-"):
            raise ValueError(f"proot has no `--`: argv[0] {argv[0]!r} would be read as a proot option")
        cwd = Path(cwd)
        if not cwd.is_absolute():
            raise ValueError(f"cwd must be absolute: {cwd}")
        tmp_host = Path(tmp) if tmp is not None else Path("/tmp")
        mounts: List[tuple] = [
            (Path("/dev"), Path("/dev")),
            (Path("/proc"), Path("/proc")),
            (tmp_host, Path("/tmp")),
        ]
        for bind in binds:
            bind = Path(bind)
            if not bind.is_absolute():
                raise ValueError(f"bind paths must be absolute: {bind}")
            if bind == Path("/") or ":" in str(bind):
                raise ValueError(f"cannot bind {str(bind)!r} (the root, or a path with ':')")
            if (bind, bind) not in mounts:
                mounts.append((bind, bind))
        host_cwd = self._host_path(cwd, mounts)
        if not host_cwd.is_dir():
            raise UserlandError(
                f"working directory {cwd} does not exist inside the userland (host: {host_cwd})"
            )
        if "/" not in argv[0]:
            # proot looks a bare name up only on the PATH it is given, and REAPI actions often
            # carry none (Pants runs `env -0` that way); execvp would use /bin:/usr/bin.
            for guest_dir in (Path("/bin"), Path("/usr/bin")):
                if (self._host_path(guest_dir, mounts) / argv[0]).exists():
                    argv[0] = str(guest_dir / argv[0])
                    break
        cmd = [str(self.proot), "-q", str(self.qemu), "-r", str(self.rootfs), "-w", str(cwd)]
        for host, guest in mounts:
            cmd += ["-b", str(host) if host == guest else f"{host}:{guest}"]
        return cmd + argv

    @staticmethod
    def cleanup_killed(proot_pid: int) -> List[Path]:
        """Removes what a proot that was SIGKILLed left in the host's /tmp: its loader
        (/tmp/prooted-PID-*) and glue folder (/tmp/proot-PID-*). Call it with the pid of the
        process started from wrap()'s argv, after that process was killed and reaped (a proot
        that exits by itself removes them). Returns the paths removed."""
        removed = []
        for pattern in (f"prooted-{int(proot_pid)}-*", f"proot-{int(proot_pid)}-*"):
            for leftover in Path("/tmp").glob(pattern):
                if leftover.is_dir() and not leftover.is_symlink():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        leftover.unlink()
                removed.append(leftover)
        return removed

    def _host_path(self, guest: Path, mounts: Sequence[tuple]) -> Path:
        # proot resolves a path through the longest bind that contains it, else the rootfs.
        best = None
        for host, target in mounts:
            if guest == target or target in guest.parents:
                if best is None or len(target.parts) > len(best[1].parts):
                    best = (host, target)
        if best is not None:
            return best[0] / guest.relative_to(best[1])
        return self.rootfs / guest.relative_to("/")


class NativeRunner:
    """On a real aarch64 host: runs argv as it is (the caller applies cwd and env)."""

    def wrap(
        self, argv: Sequence[str], *, cwd: Path, binds: Sequence[Path], tmp: Optional[Path] = None
    ) -> List[str]:
        return [str(a) for a in argv]


def host_runner(rootfs: Path) -> CommandWrapper:
    """NativeRunner on an aarch64 host, else the emulated userland at `rootfs` (built if needed)."""
    if native_aarch64():
        return NativeRunner()
    return Arm64Userland.detect(build_rootfs(rootfs))


def prove_aarch64(runner: CommandWrapper, *, timeout: float = 60) -> str:
    """Runs `uname -m` through `runner`; returns "aarch64" or raises UserlandError."""
    argv = runner.wrap(["uname", "-m"], cwd=Path("/"), binds=())
    try:
        proc = subprocess.run(
            argv,
            cwd="/",
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UserlandError(f"`{' '.join(argv)}` could not run: {exc}") from exc
    machine = proc.stdout.strip()
    if proc.returncode != 0 or machine != "aarch64":
        raise UserlandError(
            f"`uname -m` through {type(runner).__name__} gave {machine!r} (exit {proc.returncode}), "
            f"not 'aarch64'; stderr: {proc.stderr.strip()!r}"
        )
    return machine
