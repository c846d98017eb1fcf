"""A private Dovecot 2.3 (IMAP + LMTP) on loopback, for tests and benchmarks.

Each instance has its own config, runtime and state folders in a temp dir, so
it never touches a system Dovecot and several can run side by side. Mail is
delivered with LMTP exactly as a real MTA would, and read back over IMAP, so
the service is exercised against real server behaviour (UIDs, UIDVALIDITY,
IDLE, special-use folders) rather than a mock.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from imapclient import IMAPClient

# Capabilities Dovecot 2.3 announces after login, minus IDLE: used to emulate
# a server without IDLE so the polling fallback can be tested.
CAPABILITIES_WITHOUT_IDLE = (
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE SORT SORT=DISPLAY THREAD=REFERENCES "
    "THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT "
    "CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH "
    "ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY "
    "PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY SPECIAL-USE"
)

DEFAULT_PASSWORD = "secret"


class DovecotError(RuntimeError):
    """Raised when the private Dovecot cannot be started or driven."""


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.02)
    return False


class Dovecot:
    """One private Dovecot instance; use as a context manager or call start()/stop().

    Users are kept in files Dovecot reads on every lookup, so users can
    be added while it runs. ``reset()`` forgets every user and gives later users
    fresh, empty mailboxes, which lets one running instance serve many tests.
    """

    def __init__(
        self,
        *,
        idle: bool = True,
        special_use_folders: dict[str, str] | None = None,
        root: str | os.PathLike[str] | None = None,
    ) -> None:
        self.idle = idle
        # folder name -> special-use flag, configured in the namespace so that
        # RFC 6154 discovery (LIST RETURN (SPECIAL-USE)) sees them.
        self.special_use_folders = {
            "Sent": "\\Sent",
            "Drafts": "\\Drafts",
            "Trash": "\\Trash",
            "Junk": "\\Junk",
            "Archive": "\\Archive",
        }
        if special_use_folders:
            self.special_use_folders.update(special_use_folders)
        self._own_root = root is None
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="sg-dovecot-"))
        self.root.chmod(0o755)  # mail processes run as an unprivileged user
        self.imap_port = free_port()
        self.lmtp_port = free_port()
        self.host = "127.0.0.1"
        self.config_path = self.root / "dovecot.conf"
        self.dict_conf_path = self.root / "auth-dict.conf.ext"
        self.log_path = self.root / "dovecot.log"
        self._users: dict[str, str] = {}
        self._generation = 0
        self._proc: subprocess.Popen[bytes] | None = None
        if os.geteuid() == 0:
            self.mail_user, self.mail_group = "nobody", "nogroup"
        else:  # unprivileged run: every Dovecot process runs as the caller
            self.mail_user = pwd.getpwuid(os.geteuid()).pw_name
            self.mail_group = grp.getgrgid(os.getegid()).gr_name
        for sub in ("run", "state", "mail"):
            (self.root / sub).mkdir(exist_ok=True)
            (self.root / sub).chmod(0o755)
        self._chown_mail(self.root / "mail")
        self._new_generation_dir()
        self._write_users()
        self._write_config()

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> Dovecot:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 15.0) -> None:
        """Start the server and wait until IMAP and LMTP accept connections."""
        if self.running:
            return
        binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
        if not Path(binary).exists():
            raise DovecotError("dovecot is not installed (run tools/install_test_deps.sh)")
        self._proc = subprocess.Popen(
            [binary, "-F", "-c", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        for port in (self.imap_port, self.lmtp_port):
            if not _wait_for_port(port, deadline):
                log = self.log_tail()
                self.stop()
                raise DovecotError(f"dovecot did not listen on {port}:\n{log}")
        # the greeting proves the login process works, not just the listener
        while True:
            try:
                with IMAPClient(self.host, self.imap_port, ssl=False, timeout=2) as client:
                    client.noop()
                break
            except (OSError, IMAPClient.Error):
                if time.monotonic() > deadline:
                    log = self.log_tail()
                    self.stop()
                    raise DovecotError(f"dovecot IMAP not ready:\n{log}") from None
                time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the whole instance (master and every child); mail stays on disk."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            # SIGTERM to the master makes it stop all its children
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout)
        # children left behind (e.g. master killed hard) share its session
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        self._wait_ports_free()

    def kill(self) -> None:
        """Crash the server (SIGKILL to every process), as a power cut would."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        self._wait_ports_free()

    def restart(self) -> None:
        """Stop and start again on the same ports, keeping users and mail."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop (hard: its files are deleted next) and delete every file of the instance."""
        self.kill()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def _wait_ports_free(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        for port in (self.imap_port, self.lmtp_port):
            while time.monotonic() < deadline:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        pass
                except OSError:
                    break
                time.sleep(0.02)

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server log (for failure messages)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- users ---------------------------------------------------------------

    @property
    def users(self) -> dict[str, str]:
        """Known users, address -> password."""
        return dict(self._users)

    def add_user(self, address: str, password: str = DEFAULT_PASSWORD) -> str:
        """Create (or update) a mailbox user; any address at any domain."""
        for value in (address, password):
            if not value or any(ch in value for ch in "/\r\n\0"):
                raise ValueError(f"unusable as a test address or password: {value!r}")
        self._users[address.lower()] = password
        self._write_user(address.lower())
        return address

    def has_user(self, address: str) -> bool:
        """Sub-addresses (user+tag@domain) belong to their user, as LMTP delivers them."""
        local, _, domain = address.lower().partition("@")
        return f"{local.split('+', 1)[0]}@{domain}" in self._users

    def password(self, address: str) -> str:
        return self._users[address.lower()]

    def reset(self) -> None:
        """Forget all users; users added later get new, empty mailboxes.

        Mail of the previous users is deleted; the server keeps running.
        """
        old = self._generation_dir()
        self._users.clear()
        self._generation += 1
        self._new_generation_dir()
        self._write_users()
        shutil.rmtree(old, ignore_errors=True)

    def home(self, address: str) -> Path:
        return self._generation_dir() / address.lower()

    def maildir(self, address: str) -> Path:
        return self.home(address) / "Maildir"

    # -- mail ----------------------------------------------------------------

    def deliver(self, address: str, raw: bytes, mail_from: str = "sender@example.test") -> None:
        """Deliver one message to a user's INBOX through LMTP, as an MTA would."""
        self.deliver_many(address, [raw], mail_from=mail_from)

    def deliver_many(
        self, address: str, raws: Iterable[bytes], mail_from: str = "sender@example.test"
    ) -> int:
        """Deliver many messages over one LMTP connection; returns how many."""
        count = 0
        with self.lmtp() as lmtp:
            for raw in raws:
                lmtp.sendmail(mail_from, [address], raw)
                count += 1
        return count

    def fill(self, address: str, raws: Iterable[bytes], folder: str = "INBOX") -> int:
        """Write messages straight into a user's Maildir (fast bulk setup).

        For benchmarks and large fixtures: LMTP costs milliseconds per message,
        this microseconds. Dovecot indexes the files on the next SELECT, as it
        does for mail copied in by any other tool.
        """
        with self.session(address) as client:  # creates the Maildir
            if not client.folder_exists(folder):
                client.create_folder(folder)
            client.select_folder(folder, readonly=True)
        base = self.maildir(address)
        if folder != "INBOX":
            base = base / ("." + folder.replace("/", "."))
        cur = base / "cur"
        stamp = int(time.time())
        uid = gid = None
        if os.geteuid() == 0:
            uid, gid = pwd.getpwnam(self.mail_user).pw_uid, grp.getgrnam(self.mail_group).gr_gid
        for sub in ("cur", "new", "tmp"):
            if not (base / sub).is_dir():
                (base / sub).mkdir(parents=True)
                if uid is not None:
                    os.chown(base / sub, uid, gid)
        count = 0
        for count, raw in enumerate(raws, start=1):
            data = raw.replace(b"\r\n", b"\n")  # Maildir files use LF
            path = cur / f"{stamp}.M{count}P{os.getpid()}.sgfill,S={len(data)}:2,"
            path.write_bytes(data)
            if uid is not None:
                os.chown(path, uid, gid)
        return count

    @contextlib.contextmanager
    def lmtp(self) -> Iterator[smtplib.LMTP]:
        """An LMTP connection to this server (for custom deliveries)."""
        lmtp = smtplib.LMTP(self.host, self.lmtp_port, timeout=30)
        try:
            yield lmtp
        finally:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                lmtp.quit()
            lmtp.close()

    def imap(self, address: str, timeout: float = 10.0) -> IMAPClient:
        """A logged-in IMAP connection for a user (the caller logs out)."""
        client = IMAPClient(self.host, self.imap_port, ssl=False, timeout=timeout)
        client.login(address, self._users[address.lower()])
        return client

    @contextlib.contextmanager
    def session(self, address: str) -> Iterator[IMAPClient]:
        client = self.imap(address)
        try:
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def messages(self, address: str, folder: str = "INBOX") -> list[bytes]:
        """Every message of a folder, raw, in UID order (flags untouched)."""
        with self.session(address) as client:
            client.select_folder(folder, readonly=True)
            uids = sorted(client.search("ALL"))
            if not uids:
                return []
            data = client.fetch(uids, ["BODY.PEEK[]"])
            return [data[uid][b"BODY[]"] for uid in uids]

    def flags(self, address: str, folder: str = "INBOX") -> dict[int, tuple[bytes, ...]]:
        """UID -> flags of every message in a folder."""
        with self.session(address) as client:
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            if not uids:
                return {}
            return {uid: tuple(d[b"FLAGS"]) for uid, d in client.fetch(uids, ["FLAGS"]).items()}

    def uidvalidity(self, address: str, folder: str = "INBOX") -> int:
        with self.session(address) as client:
            return int(client.folder_status(folder, ["UIDVALIDITY"])[b"UIDVALIDITY"])

    def append(
        self,
        address: str,
        raw: bytes,
        folder: str = "INBOX",
        flags: tuple[bytes | str, ...] = (),
    ) -> None:
        """Store a message with IMAP APPEND (e.g. into Sent, as a mail client does)."""
        with self.session(address) as client:
            client.append(folder, raw, flags=flags)

    def create_folder(self, address: str, name: str, special_use: str | None = None) -> None:
        """Create a folder, optionally with an RFC 6154 special-use flag (e.g. "\\Sent").

        Dovecot 2.3 takes special-use flags only from its config, so a new flag
        is written there (for every user) and the server reloads; the flag
        moves away from any folder that had it, as when a server's Sent folder
        is "Sent Items".
        """
        if special_use and self.special_use_folders.get(name) != special_use:
            self.set_special_use(name, special_use, address)
        with self.session(address) as client:
            if not client.folder_exists(name):
                client.create_folder(name)
            client.subscribe_folder(name)

    def set_special_use(self, name: str, special_use: str, address: str | None = None) -> None:
        """Make `name` the only folder with this special-use flag, and reload.

        With an address, waits until that user's new sessions see the flag.
        """
        self.special_use_folders = {
            folder: flag for folder, flag in self.special_use_folders.items() if flag != special_use
        }
        self.special_use_folders[name] = special_use
        self._write_config()
        if not self.running:
            return
        self.doveadm("reload")
        if address is None:
            time.sleep(0.3)
            return
        deadline = time.monotonic() + 10
        while True:
            with self.session(address) as client:
                found = client.find_special_folder(special_use.encode())
            if found == name:
                return
            if time.monotonic() > deadline:
                raise DovecotError(f"{name} did not become {special_use} after reload")
            time.sleep(0.05)

    def change_uidvalidity(self, address: str, folder: str = "INBOX") -> int:
        """Give a folder a new UIDVALIDITY and new UIDs, as a server rebuild does.

        The messages (bytes, flags, dates) are kept; their UIDs all change, so a
        client must not trust its old UIDs. Returns the new UIDVALIDITY.
        """
        with self.session(address) as client:
            client.select_folder(folder)
            old = int(client.folder_status(folder, ["UIDVALIDITY"])[b"UIDVALIDITY"])
            saved = []
            uids = sorted(client.search("ALL"))
            if uids:
                data = client.fetch(uids, ["BODY.PEEK[]", "FLAGS", "INTERNALDATE"])
                saved = [
                    (
                        data[u][b"BODY[]"],
                        tuple(f for f in data[u][b"FLAGS"] if f.lower() != b"\\recent"),
                        data[u][b"INTERNALDATE"],
                    )
                    for u in uids
                ]
                client.delete_messages(uids)
                client.expunge()
            client.unselect_folder()
        new = old + 1000
        self.doveadm("mailbox", "update", "-u", address, "--uid-validity", str(new), folder)
        with self.session(address) as client:
            for raw, flags, when in saved:
                client.append(folder, raw, flags=flags, msg_time=when)
            got = int(client.folder_status(folder, ["UIDVALIDITY"])[b"UIDVALIDITY"])
        if got == old:
            raise DovecotError("UIDVALIDITY did not change")
        return got

    def doveadm(self, *args: str) -> str:
        """Run doveadm against this instance; returns stdout."""
        binary = shutil.which("doveadm") or "/usr/bin/doveadm"
        result = subprocess.run(
            [binary, "-c", str(self.config_path), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            raise DovecotError(
                f"doveadm {' '.join(args)} failed ({result.returncode}): "
                f"{result.stderr.decode(errors='replace')}"
            )
        return result.stdout.decode(errors="replace")

    # -- files ---------------------------------------------------------------

    def _generation_dir(self) -> Path:
        return self.root / "mail" / f"g{self._generation}"

    def _new_generation_dir(self) -> None:
        path = self._generation_dir()
        path.mkdir(parents=True, exist_ok=True)
        self._chown_mail(path)

    def _chown_mail(self, path: Path) -> None:
        if os.geteuid() == 0:
            shutil.chown(path, self.mail_user, self.mail_group)

    def _write_users(self) -> None:
        """One JSON file per user, read by Dovecot on every lookup (no caching).

        A passwd-file would be re-stat'ed at most once a second, so users added
        a moment apart would be refused.
        """
        users_dir = self.root / "users"
        for kind in ("passdb", "userdb"):
            folder = users_dir / kind
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
        for address in self._users:
            self._write_user(address)

    def _write_user(self, address: str) -> None:
        users_dir = self.root / "users"
        self._write_json(users_dir / "passdb" / address, {"password": self._users[address]})
        self._write_json(
            users_dir / "userdb" / address,
            {"home": str(self.home(address)), "uid": self.mail_user, "gid": self.mail_group},
        )

    @staticmethod
    def _write_json(path: Path, value: dict[str, str]) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(value))
        os.replace(tmp, path)

    def _write_config(self) -> None:
        root = self.root
        privileged = os.geteuid() == 0
        folders = "\n".join(
            f'  mailbox "{name}" {{\n    special_use = {flag}\n    auto = subscribe\n  }}'
            for name, flag in self.special_use_folders.items()
        )
        users = (
            ""
            if privileged
            else f"default_internal_user = {self.mail_user}\n"
            f"default_login_user = {self.mail_user}\n"
            f"default_internal_group = {self.mail_group}\n"
        )
        capability = "" if self.idle else f"  imap_capability = {CAPABILITIES_WITHOUT_IDLE}\n"
        config = f"""# generated by tests/rig/dovecot.py
base_dir = {root}/run
state_dir = {root}/state
instance_name = saygoodbye-test-{root.name}
listen = 127.0.0.1
protocols = imap lmtp
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = {self.log_path}
mail_location = maildir:~/Maildir
mail_fsync = never
first_valid_uid = 1
first_valid_gid = 1
{users}
passdb {{
  driver = dict
  args = {self.dict_conf_path}
}}
userdb {{
  driver = dict
  args = {self.dict_conf_path}
}}
namespace inbox {{
  inbox = yes
  separator = /
{folders}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {self.lmtp_port}
  }}
}}
protocol imap {{
  mail_max_userip_connections = 200
{capability}}}
protocol lmtp {{
  postmaster_address = postmaster@localhost.test
}}
"""
        self.config_path.write_text(config)
        self.dict_conf_path.write_text(
            f"uri = fs:posix:prefix={self.root}/users/\n"
            "password_key = passdb/%Lu\n"
            "user_key = userdb/%Lu\n"
            "iterate_disable = yes\n"
            "default_pass_scheme = PLAIN\n"
        )
