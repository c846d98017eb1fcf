"""Owner replies as commands: what a reply says, and whether it may be obeyed (pure).

An owner decides by replying to an email; the reply carries a token (in the
plus-address of our Reply-To, and in a References entry for servers without
sub-addressing). Whether to obey is decided here from plain data, so every
forgery — wrong sender, foreign or failing Authentication-Results, replayed,
expired or conflicting tokens, auto-replies — is tested with literals.
Looking tokens up and acting is ``approvals`` (I/O).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.parser import BytesHeaderParser
from email.utils import getaddresses

from ..mail.parse import ParsedMessage, parse_message

__all__ = [
    "AuthVerdict",
    "Decision",
    "ReplyFacts",
    "TokenRecord",
    "check_authentication",
    "decide",
    "extract_tokens",
    "parse_authentication_results",
    "parse_command",
    "reply_facts",
]

# Tokens are 32 characters of lowercase base32 (160 random bits): they survive
# servers that lowercase addresses, and contain nothing that needs quoting.
TOKEN_RE = re.compile(r"^[a-z2-7]{32}$")
_RECIPIENT_HEADERS = ("to", "cc", "delivered-to", "x-original-to", "envelope-to")
_COMMAND_WORD = re.compile(r"^[A-Za-z][A-Za-z_-]{0,31}")


@dataclass(frozen=True)
class ReplyFacts:
    """What one incoming reply says, reduced to what the decision needs."""

    message_id: str
    from_addrs: tuple[str, ...]
    subject: str
    plus_tokens: tuple[str, ...]  # from our plus-address in To/Cc/Delivered-To
    reference_tokens: tuple[str, ...]  # from References/In-Reply-To, newest last
    command: str | None  # upper-case first word of the first non-empty line
    args: str  # the rest of that line
    body: str  # the new text after the command line
    auto_generated: bool
    auto_reason: str | None
    authentication_results: tuple[str, ...]  # top first, as in the header block
    references: tuple[str, ...]
    in_reply_to: str | None

    @property
    def token(self) -> str | None:
        """The token this reply answers: the plus-address's, else the newest reference."""
        if self.plus_tokens:
            return self.plus_tokens[0]
        return self.reference_tokens[-1] if self.reference_tokens else None

    @property
    def sender(self) -> str | None:
        return self.from_addrs[0] if len(self.from_addrs) == 1 else None


@dataclass(frozen=True)
class TokenRecord:
    """A stored token, as far as the decision cares."""

    owner: str
    purpose: str
    subject_id: str
    version: int
    expires_at: datetime
    used_at: datetime | None


@dataclass(frozen=True)
class AuthVerdict:
    passed: bool
    reason: str


@dataclass(frozen=True)
class Decision:
    accepted: bool
    reason: str
    tell_owner: bool  # send the rejection to the token's owner (never to a stranger)


def _split_local(address: str) -> tuple[str, str, str] | None:
    local, at, domain = address.rpartition("@")
    if not at or not local:
        return None
    base, plus, tag = local.partition("+")
    return base.lower(), tag if plus else "", domain.lower()


def extract_tokens(
    recipients: Sequence[str], reference_ids: Sequence[str], command_address: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(plus-address tokens, reference tokens) found for our command address.

    Only tags on our own address count, and only references of the form
    ``<TOKEN@token.OUR-DOMAIN>``; anything else is ignored, never guessed at.
    """
    ours = _split_local(command_address)
    if ours is None:
        return (), ()
    base, _, domain = ours
    plus: list[str] = []
    for address in recipients:
        parts = _split_local(address.strip())
        if parts is None:
            continue
        rbase, tag, rdomain = parts
        tag = tag.lower()
        if rbase == base and rdomain == domain and TOKEN_RE.match(tag) and tag not in plus:
            plus.append(tag)
    refs: list[str] = []
    suffix = f"@token.{domain}>"
    for ref in reference_ids:
        ref = ref.strip()
        if ref.lower().endswith(suffix) and ref.startswith("<"):
            tag = ref[1 : -len(suffix)].lower()
            if TOKEN_RE.match(tag):
                if tag in refs:
                    refs.remove(tag)
                refs.append(tag)
    return tuple(plus), tuple(refs)


def parse_command(new_text: str) -> tuple[str | None, str, str]:
    """(COMMAND, rest of its line, the text after it) from a reply's new text.

    The command is the first word of the first non-empty line, so "Approve.",
    "approve" and "APPROVE – looks good" all read APPROVE.
    """
    lines = new_text.replace("\r\n", "\n").split("\n")
    for i, line in enumerate(lines):
        stripped = line.strip().lstrip("*_").strip()
        if not stripped:
            continue
        match = _COMMAND_WORD.match(stripped)
        if not match:
            return None, stripped, "\n".join(lines[i + 1 :]).strip()
        word = match.group(0).rstrip("-_")
        rest = stripped[len(word) :].lstrip("*_.,:;!–—- \t").strip()
        return word.upper(), rest, "\n".join(lines[i + 1 :]).strip()
    return None, "", ""


def reply_facts(raw: bytes, command_address: str) -> ReplyFacts:
    """Read a raw reply once: tokens, command, sender, authentication, auto-reply flag."""
    parsed = parse_message(raw)
    headers = BytesHeaderParser(policy=policy.compat32).parsebytes(raw)
    recipients: list[str] = []
    for name in _RECIPIENT_HEADERS:
        values = [str(v) for v in headers.get_all(name, [])]
        recipients.extend(addr for _, addr in getaddresses(values) if addr)
    from_values = [str(v) for v in headers.get_all("from", [])]
    from_addrs = tuple(addr.lower() for _, addr in getaddresses(from_values) if addr)
    if not from_addrs and parsed.from_addr:
        from_addrs = (parsed.from_addr.lower(),)
    ids = [*parsed.references, *([parsed.in_reply_to] if parsed.in_reply_to else [])]
    plus, refs = extract_tokens(recipients, ids, command_address)
    command, args, body = parse_command(parsed.new_text)
    return _facts(parsed, from_addrs, plus, refs, command, args, body)


def _facts(
    parsed: ParsedMessage,
    from_addrs: tuple[str, ...],
    plus: tuple[str, ...],
    refs: tuple[str, ...],
    command: str | None,
    args: str,
    body: str,
) -> ReplyFacts:
    return ReplyFacts(
        message_id=parsed.message_id,
        from_addrs=from_addrs,
        subject=parsed.subject,
        plus_tokens=plus,
        reference_tokens=refs,
        command=command,
        args=args,
        body=body,
        auto_generated=parsed.auto_generated,
        auto_reason=parsed.auto_reason,
        authentication_results=parsed.authentication_results,
        references=parsed.references,
        in_reply_to=parsed.in_reply_to,
    )


# -- Authentication-Results (RFC 8601) --------------------------------------


def _strip_comments(value: str) -> str:
    out: list[str] = []
    depth = 0
    quoted = False
    escape = False
    for ch in value:
        if escape:
            escape = False
            if depth == 0:
                out.append(ch)
            continue
        if ch == "\\":
            escape = True
            if depth == 0:
                out.append(ch)
            continue
        if ch == '"' and depth == 0:
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
            continue
        elif not quoted and ch == ")" and depth:
            depth -= 1
            continue
        if depth == 0:
            out.append(ch)
    return "".join(out)


def parse_authentication_results(
    value: str,
) -> tuple[str, list[tuple[str, str, dict[str, str]]]]:
    """(authserv-id, [(method, result, {ptype.property: value})]) of one header value."""
    parts = [p.strip() for p in _strip_comments(value).split(";")]
    head = parts[0].split() if parts else []
    authserv_id = head[0].lower() if head else ""
    results: list[tuple[str, str, dict[str, str]]] = []
    for part in parts[1:]:
        tokens = part.split()
        if not tokens or "=" not in tokens[0]:
            continue  # "none" or garbage
        method, _, result = tokens[0].partition("=")
        props: dict[str, str] = {}
        for token in tokens[1:]:
            key, eq, val = token.partition("=")
            if eq and "." in key:
                props[key.lower()] = val.strip('"').lower()
        results.append((method.split("/")[0].lower(), result.strip('"').lower(), props))
    return authserv_id, results


def _aligned(domain: str, candidate: str | None) -> bool:
    """DMARC-style relaxed alignment without a public-suffix list.

    The same domain, a parent (never a bare TLD) or a subdomain: a key under
    any of these can only be published by whoever runs the owner's DNS.
    """
    if not candidate:
        return False
    candidate = candidate.rsplit("@", 1)[-1].strip(".").lower()
    if "." not in candidate:
        return False
    return (
        domain == candidate
        or domain.endswith("." + candidate)
        or candidate.endswith("." + domain)
    )


def check_authentication(
    results: Sequence[str], authserv_id: str | None, owner_address: str
) -> AuthVerdict:
    """Does our own server vouch (dkim or dmarc pass) for the owner's domain?

    Only the topmost header carrying our authserv-id counts: headers below it
    were added before the message reached our server and can be forged by
    anyone; headers from other servers are ignored altogether.
    """
    if not authserv_id:
        return AuthVerdict(False, "no authserv_id is configured, so no header can be trusted")
    ours = authserv_id.strip().lower()
    domain = owner_address.rsplit("@", 1)[-1].lower()
    for value in results:
        server, methods = parse_authentication_results(value)
        if server != ours:
            continue
        for method, result, props in methods:
            if result != "pass":
                continue
            if method == "dkim" and (
                _aligned(domain, props.get("header.d")) or _aligned(domain, props.get("header.i"))
            ):
                return AuthVerdict(True, f"dkim=pass for {domain}")
            if method == "dmarc" and _aligned(domain, props.get("header.from")):
                return AuthVerdict(True, f"dmarc=pass for {domain}")
        summary = ", ".join(f"{m}={r}" for m, r, _ in methods) or "no results"
        return AuthVerdict(
            False, f"{authserv_id} did not confirm the sender's domain {domain} ({summary})"
        )
    return AuthVerdict(False, f"no Authentication-Results header from {authserv_id}")


# -- the decision ------------------------------------------------------------


def decide(
    facts: ReplyFacts,
    record: TokenRecord | None,
    *,
    now: datetime,
    require_authenticated: bool,
    authserv_id: str | None,
    known_commands: Collection[str],
    current_version: int | None = None,
) -> Decision:
    """Accept only when every check holds; the first failure is the reason.

    `current_version` is the version of what the token decides (a draft), when
    that thing has versions: a token for an older version is stale.
    Rejections go to the token's owner only (``tell_owner``), never to the
    From address, so forged mail cannot make us write to strangers.
    """
    if facts.auto_generated:
        return Decision(False, f"auto-generated message ({facts.auto_reason})", False)
    plus = set(facts.plus_tokens)
    newest_ref = facts.reference_tokens[-1] if facts.reference_tokens else None
    if len(plus) > 1 or (plus and newest_ref and facts.token != newest_ref):
        return Decision(False, "the reply carries two different tokens", record is not None)
    if facts.token is None:
        return Decision(False, "no reply token found (reply to the original email)", False)
    if record is None:
        return Decision(False, "unknown or garbled reply token", False)
    if facts.sender is None or facts.sender != record.owner.lower():
        sender = facts.sender or ", ".join(facts.from_addrs) or "nobody"
        return Decision(
            False, f"sent by {sender}, but this request was made to {record.owner}", True
        )
    if record.used_at is not None:
        return Decision(False, "this request was already answered (token used)", True)
    if now >= record.expires_at:
        return Decision(False, "this request has expired", True)
    if require_authenticated:
        verdict = check_authentication(facts.authentication_results, authserv_id, record.owner)
        if not verdict.passed:
            return Decision(False, f"the reply could not be authenticated: {verdict.reason}", True)
    if current_version is not None and current_version != record.version:
        return Decision(
            False,
            f"this request was for version {record.version}; the current one is "
            f"{current_version}",
            True,
        )
    if facts.command is None:
        return Decision(False, "no command found on the first line of the reply", True)
    if facts.command not in known_commands:
        allowed = ", ".join(sorted(known_commands)) or "none"
        return Decision(
            False, f"{facts.command} is not a command here (possible: {allowed})", True
        )
    return Decision(True, "accepted", False)
