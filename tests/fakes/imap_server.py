"""A small real IMAP4rev1 server on a free loopback port: one user, one folder, the
commands the poller uses (CAPABILITY, LOGIN, SELECT, UID SEARCH, UID FETCH, UID STORE,
NOOP, LOGOUT). Enough to test polling against; nothing more."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shlex
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field


@dataclass
class Stored:
    uid: int
    raw: bytes
    flags: set[str] = field(default_factory=set)


@dataclass
class FakeImap:
    user: str = "neuvonta"
    password: str = "salasana"
    folder: str = "INBOX"
    uidvalidity: int = 1
    host: str = "127.0.0.1"
    port: int = 0
    messages: list[Stored] = field(default_factory=list)
    logins: int = 0
    next_uid: int = 1

    def deliver(self, raw: bytes, seen: bool = False) -> int:
        uid = self.next_uid
        self.next_uid += 1
        self.messages.append(Stored(uid, raw, {"\\Seen"} if seen else set()))
        return uid

    def seen(self) -> list[int]:
        return [m.uid for m in self.messages if "\\Seen" in m.flags]

    def _uid_range(self, spec: str) -> set[int]:
        top = max((m.uid for m in self.messages), default=0)
        wanted: set[int] = set()
        for part in spec.split(","):
            low, _, high = part.partition(":")
            a = top if low == "*" else int(low)
            b = a if not high else top if high == "*" else int(high)
            wanted.update(range(min(a, b), max(a, b) + 1))
        return wanted

    def search(self, criteria: list[str]) -> list[int]:
        found = list(self.messages)
        i = 0
        while i < len(criteria):
            word = criteria[i].upper()
            if word == "UID":
                uids = self._uid_range(criteria[i + 1])
                found = [m for m in found if m.uid in uids]
                i += 2
                continue
            if word == "UNSEEN":
                found = [m for m in found if "\\Seen" not in m.flags]
            i += 1
        return [m.uid for m in found]

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def send(line: str | bytes) -> None:
            writer.write((line.encode() if isinstance(line, str) else line) + b"\r\n")

        send("* OK [CAPABILITY IMAP4rev1 UIDPLUS] fake IMAP ready")
        authed = selected = False
        try:
            while line := await reader.readline():
                tag, _, rest = line.decode().rstrip("\r\n").partition(" ")
                # Not POSIX mode: flags keep their backslash (\\Seen); quotes are taken off.
                words = [w.strip('"') for w in shlex.split(rest, posix=False)]
                command = words[0].upper() if words else ""
                if command == "CAPABILITY":
                    send("* CAPABILITY IMAP4rev1 UIDPLUS")
                    send(f"{tag} OK CAPABILITY completed")
                elif command == "LOGIN":
                    if words[1:3] == [self.user, self.password]:
                        self.logins += 1
                        authed = True
                        send(f"{tag} OK LOGIN completed")
                    else:
                        send(f"{tag} NO [AUTHENTICATIONFAILED] invalid credentials")
                elif command == "SELECT" and authed:
                    if words[1] != self.folder:
                        send(f"{tag} NO no such mailbox")
                        continue
                    selected = True
                    send("* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)")
                    send(f"* {len(self.messages)} EXISTS")
                    send(f"* OK [UIDVALIDITY {self.uidvalidity}] UIDs valid")
                    send(f"* OK [UIDNEXT {self.next_uid}] predicted next UID")
                    send(f"{tag} OK [READ-WRITE] SELECT completed")
                elif command == "UID" and selected and len(words) > 2:
                    self._uid_command(tag, words[1].upper(), words[2:], send)
                elif command == "NOOP":
                    send(f"{tag} OK NOOP completed")
                elif command == "LOGOUT":
                    send("* BYE logging out")
                    send(f"{tag} OK LOGOUT completed")
                    break
                else:
                    send(f"{tag} BAD unknown or out-of-state command")
                await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _uid_command(
        self, tag: str, command: str, args: list[str], send: Callable[[str | bytes], None]
    ) -> None:
        if command == "SEARCH":
            if args[:1] and args[0].upper() == "CHARSET":
                args = args[2:]
            send("* SEARCH " + " ".join(str(u) for u in self.search(args)))
            send(f"{tag} OK SEARCH completed")
            return
        wanted = self._uid_range(args[0])
        for seq, m in enumerate(self.messages, start=1):
            if m.uid not in wanted:
                continue
            if command == "FETCH":
                peek = "BODY.PEEK[]" in " ".join(args[1:]).upper()
                if not peek:  # RFC822 and BODY[] mark the message read
                    m.flags.add("\\Seen")
                item = "BODY[]" if peek else "RFC822"
                send(f"* {seq} FETCH (UID {m.uid} {item} {{{len(m.raw)}}}".encode())
                send(m.raw + b")")
            elif command == "STORE":
                flags = re.findall(r"\\\w+", " ".join(args[2:]))
                m.flags.update(flags)
                send(f"* {seq} FETCH (UID {m.uid} FLAGS ({' '.join(sorted(m.flags))}))")
        send(f"{tag} OK {command} completed")


@contextlib.asynccontextmanager
async def imap_server() -> AsyncIterator[FakeImap]:
    fake = FakeImap()
    server = await asyncio.start_server(fake.serve, fake.host, 0)
    fake.port = server.sockets[0].getsockname()[1]
    try:
        yield fake
    finally:
        server.close()
        await server.wait_closed()
