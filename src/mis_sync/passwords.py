"""Initial passwords: a policy per role, generation with ``secrets``, encryption at rest with Fernet.

Young pupils get word passwords ("Tiger-Maple-42": two words from the shipped child-friendly list and
two digits); staff and parents get strong random ones. Passwords are generated inside the task that
creates the accounts and go straight into ``directory_credentials`` encrypted
(``mis_sync.directory.credentials``): never into logs, XCom, exception messages or the plan.

The Fernet key lives in an Airflow Connection (``passwords.key_connection_id``, default
``misync_credentials_key``): its password field holds one key, or several separated by commas to
rotate (the first encrypts, all decrypt). Never in the repository or the YAML.

Import-light (no SQLAlchemy; ``cryptography`` only when encrypting) because ``config`` imports the
policy models at DAG-parse time.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mis_sync.errors import SetupError
from mis_sync.usernames import ROLES, expand_staff_shorthand

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

    from mis_sync.connections import ConnectionInfo

AMBIGUOUS = frozenset("0Oo1lI|")
"""Characters that read alike on a printed sheet or a whiteboard: never in a generated password."""
AWKWARD = frozenset("'\"`\\ ,;:.")
"""Quotes, spaces and CSV punctuation: never in a random password (they break copy, paste and CSV)."""
LOWER = "abcdefghijkmnpqrstuvwxyz"
UPPER = "ABCDEFGHJKLMNPQRSTUVWXYZ"
DIGITS = "23456789"
SYMBOLS = "!#$%&*+-=?@^_~"
MIN_LENGTH = 8
"""Microsoft Entra and Google Workspace both require at least 8 characters."""
MIN_WORDS = 600
_BLOCKED_TEXT = """
ass arse anal anus bitch bollock boob bugger bum butt chav cock coon crap cum cunt damn dick dildo dyke
fag fart fuck gay git gyp hell hoe homo horny jap jizz kill knob minge mong munter nazi nig nob nonce nude
paedo pedo paki pecker pee penis pimp piss poo porn prick pube puss queer rape retard sex shit slag slut
spaz sperm spic spunk suck tit tosser tranny turd twat wank wee whore willy wog
"""
BLOCKED_SUBSTRINGS = frozenset(_BLOCKED_TEXT.split())
"""No word in the list may contain these (rude, slurs, or close enough for a playground). Strict on
purpose: it also keeps out innocent words such as "grape" or "button"."""
_WORD = re.compile(r"^[a-z]{3,8}$")
KEY_HELP = (
    'generate one with: python -c "from cryptography.fernet import Fernet; '
    'print(Fernet.generate_key().decode())"'
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WordsOptions(_Strict):
    """Word passwords: ``count`` capitalised words joined by ``separator``, then ``digits`` digits."""

    count: Annotated[int, Field(ge=1, le=6)] = 2
    separator: Literal["-", ".", "_", ""] = "-"
    digits: Annotated[int, Field(ge=0, le=4)] = 2
    """How many digits (2–9) to add at the end; 0 for none."""
    capitalise: bool = True


class PasswordPolicy(_Strict):
    """How a new account's initial password is made."""

    style: Literal["words", "random"] = "random"
    words: WordsOptions = WordsOptions()
    length: Annotated[int, Field(ge=MIN_LENGTH, le=128)] = 16
    """Random passwords: this many letters, digits and symbols (no look-alike characters)."""
    force_change_at_first_sign_in: bool = True
    """For the target adapters: Entra ``forceChangePasswordNextSignIn``, Google
    ``changePasswordAtNextLogin``."""

    @model_validator(mode="after")
    def _long_enough(self) -> PasswordPolicy:
        if self.style == "words":
            options = self.words
            joins = options.count - 1 + (1 if options.digits else 0)
            shortest = 3 * options.count + joins * len(options.separator) + options.digits
            if shortest < MIN_LENGTH:
                raise ValueError(
                    f"word passwords could be {shortest} characters long; Microsoft and Google need at "
                    f"least {MIN_LENGTH}: add words or digits"
                )
        return self


class PasswordPolicies(_Strict):
    """Initial-password policy per role; ``staff:`` in YAML sets both staff roles."""

    pupil: PasswordPolicy = PasswordPolicy(style="words")
    teaching_staff: PasswordPolicy = PasswordPolicy(style="random", length=16)
    non_teaching_staff: PasswordPolicy = PasswordPolicy(style="random", length=16)
    parent: PasswordPolicy = PasswordPolicy(style="random", length=14)
    issue_initial: bool = True
    """Give every new account an initial password (stored encrypted, exported with `misync passwords`).
    Off when another system (SSO, the tenant) sets passwords."""
    key_connection_id: str = "misync_credentials_key"
    """Airflow Connection whose password field holds the Fernet key(s) that encrypt stored passwords."""

    @model_validator(mode="before")
    @classmethod
    def _staff_shorthand(cls, data: Any) -> Any:
        return expand_staff_shorthand(data)

    def for_role(self, role: str) -> PasswordPolicy:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
        return getattr(self, role)


# --------------------------------------------------------------------------------------------------
# Generation


@lru_cache(maxsize=1)
def wordlist() -> tuple[str, ...]:
    """The shipped word list (``mis_sync/data/wordlist.txt``), checked: lower-case a–z, 3–8 letters,
    none starting with i or o (a capital I or O reads as l or 0)."""
    text = resources.files("mis_sync").joinpath("data/wordlist.txt").read_text(encoding="utf-8")
    return parse_wordlist(text)


def parse_wordlist(text: str) -> tuple[str, ...]:
    """Words from word-list text (``#`` comments and blank lines skipped); ``SetupError`` on a bad one."""
    words = []
    for line in text.splitlines():
        word = line.strip()
        if not word or word.startswith("#"):
            continue
        if not _WORD.match(word) or word[0] in "io":
            raise SetupError(f"wordlist.txt: {word!r} is not 3–8 lower-case letters a–z not starting i/o")
        if any(blocked in word for blocked in BLOCKED_SUBSTRINGS):
            raise SetupError(f"wordlist.txt: {word!r} contains a blocked letter sequence; remove it")
        words.append(word)
    unique = tuple(dict.fromkeys(words))
    if len(unique) < MIN_WORDS:
        raise SetupError(f"wordlist.txt holds {len(unique)} words; at least {MIN_WORDS} are needed")
    return unique


def _random_password(length: int) -> str:
    alphabet = LOWER + UPPER + DIGITS + SYMBOLS
    while True:
        # First character a letter: no spreadsheet formula (=, +, -, @) when the CSV is opened.
        chars = [secrets.choice(LOWER + UPPER)]
        chars += [secrets.choice(alphabet) for _ in range(length - 1)]
        password = "".join(chars)
        if (
            any(c in LOWER for c in password)
            and any(c in UPPER for c in password)
            and any(c in DIGITS for c in password)
            and any(c in SYMBOLS for c in password)
        ):
            return password


def _word_password(options: WordsOptions, words: Sequence[str]) -> str:
    chosen = [secrets.choice(words) for _ in range(options.count)]
    if options.capitalise:
        chosen = [word.capitalize() for word in chosen]
    if options.digits:
        chosen.append("".join(secrets.choice(DIGITS) for _ in range(options.digits)))
    return options.separator.join(chosen)


def generate_password(policy: PasswordPolicy) -> str:
    """One initial password for the policy, from ``secrets`` only."""
    if policy.style == "words":
        return _word_password(policy.words, wordlist())
    return _random_password(policy.length)


def generate_passwords(policy: PasswordPolicy, count: int) -> list[str]:
    return [generate_password(policy) for _ in range(count)]


# --------------------------------------------------------------------------------------------------
# Keys and encryption


class CredentialKeyError(SetupError):
    """Stored passwords cannot be decrypted with the configured keys (wrong key, or an old key dropped)."""


def keys_from_connection(conn: ConnectionInfo) -> list[bytes]:
    """The Fernet keys in a connection's password field: one key, or several comma-separated with the
    newest first. Raises ``SetupError`` naming the connection (never the key) if missing or invalid."""
    from cryptography.fernet import Fernet

    parts = [part.strip() for part in (conn.password or "").split(",") if part.strip()]
    if not parts:
        raise SetupError(
            f"connection {conn.conn_id!r} has no password: put the Fernet key that encrypts initial "
            f"passwords there (to rotate: new key first, then old ones, comma-separated); {KEY_HELP}"
        )
    keys: list[bytes] = []
    for position, part in enumerate(parts, start=1):
        key = part.encode("ascii", errors="replace")
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise SetupError(
                f"connection {conn.conn_id!r}: key {position} of {len(parts)} in the password field is "
                f"not a valid Fernet key (32 url-safe base64-encoded bytes); {KEY_HELP}"
            ) from None
        if key not in keys:
            keys.append(key)
    return keys


def fernet(keys: Sequence[bytes]) -> MultiFernet:
    """A MultiFernet: the first key encrypts, every key decrypts."""
    from cryptography.fernet import Fernet, MultiFernet

    if not keys:
        raise SetupError("no encryption key given for stored passwords")
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except (ValueError, TypeError):
        raise SetupError(
            f"an encryption key for stored passwords is not a valid Fernet key; {KEY_HELP}"
        ) from None


def encrypt_password(password: str, keys: Sequence[bytes] | MultiFernet) -> str:
    box = keys if not isinstance(keys, Sequence) else fernet(keys)
    return box.encrypt(password.encode("utf-8")).decode("ascii")


def decrypt_password(token: str, keys: Sequence[bytes] | MultiFernet) -> str:
    """The password, or ``CredentialKeyError`` if no key opens the token."""
    from cryptography.fernet import InvalidToken

    box = keys if not isinstance(keys, Sequence) else fernet(keys)
    try:
        return box.decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise CredentialKeyError(
            "stored initial passwords cannot be decrypted with the configured key(s): check the key "
            "connection; after a rotation keep the old key after the new one until rotation is done"
        ) from None
