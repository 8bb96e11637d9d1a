"""iSAMS through its Batch API: one XML document with a section per "method" the school's key allows.

Two ways in, same document:

- **HTTP**: ``POST {base_url}/api/batch/1.0/xml.ashx?apiKey={key}`` [V]; ``base_url`` is
  ``mis.options.base_url`` or the connection's ``extra.base_url`` (or the host of an ``http``
  connection), the key is the connection's password (or ``extra.api_key``). An optional ``<Filters>``
  body (``mis.options.filters``, XML text) is sent as ``application/xml`` [V]. 401/403 (invalid key,
  methods not allocated, IP/domain restrictions) raise ``SetupError``; 5xx, 408, 429 and network errors
  are retried with exponential backoff (``options.attempts``, default 4; ``options.backoff_seconds``,
  default 2) and then raise ``SourceUnavailableError`` so Airflow retries the task later. The key is
  never logged (httpx's request log is redacted) nor put in an error message.
- **File**: ``isams-batch.xml`` (``mis.options.file``) in the folder given by ``Connector.folder()``.

Shape (``mis-sources.md`` §3.4; paths, fields and code tables in ``include/mis_schemas/isams_batch.yaml``
with their confidence): ``PupilManager/CurrentPupils/Pupil``, ``HRManager/CurrentStaff/StaffMember``,
``SchoolManager/Years/Year`` and ``Forms/Form`` [S], ``TeachingManager/Sets/Set`` with
``Teachers/Teacher[@StaffId]`` and ``SetLists/SetList[@SetId @PupilId]`` [S], subjects, contacts and
contact types [U]. A missing required section (a method not allocated to the key) stops the extract.

What the Batch API carries, and so what this connector yields: current pupils and current staff only
(all on roll; leavers simply vanish, which the plan treats as leaving); no preferred surnames, former
UPNs, SCNs, leaving dates, staff dates of birth or start dates; contacts without preferred names or a
staff link. Memberships: year groups from each pupil's ``NCYear`` and the Year's tutors; forms from
each pupil's ``Form`` (matched to a Form's ``@Id``, else its name) and the form's tutor and assistant
tutors (``@…TutorId``, else the ``<Tutor>`` user codes [S]); sets from ``SetLists`` and set teachers.
Group ids are prefixed by kind (``year:``, ``form:``, ``set:``) because iSAMS numbers them separately.
Every group's academic year is the snapshot's (the API serves the current year). Parental
responsibility ``Default`` is resolved through the contact types [V].

Snapshot time: over HTTP the response's ``Last-Modified`` (else ``Date``, else now; the API caches
for up to 24 h [V] and states no data time [U]); from a file, its modification time.
"""

from __future__ import annotations

import logging
import re
import time
from email.utils import parsedate_to_datetime

import httpx
import pandas as pd

from mis_sync.connectors.base import Connector, ExtractError
from mis_sync.connectors.isams_batch_format import SOURCE, BatchFormat, Reshape, load_batch_format
from mis_sync.connectors.xml_source import parse_xml
from mis_sync.errors import SetupError, SourceUnavailableError
from mis_sync.model import Extract

RETRY_STATUSES = frozenset({408, 429})
KEY_MESSAGES = frozenset({"InvalidApiKey", "MethodsNotAllocatedToKeyException"})


class _RedactApiKey(logging.Filter):
    """httpx logs each request URL at INFO; the Batch API key travels in the query string."""

    pattern = re.compile(r"(?i)(apikey=)[^&\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                self.pattern.sub(r"\1***", str(a)) if isinstance(a, str | httpx.URL) else a
                for a in record.args
            )
        return True


def _redact_httpx_logs() -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactApiKey) for f in logger.filters):
        logger.addFilter(_RedactApiKey())


_ERROR_DOCUMENT = re.compile(rb"\s*(?:<\?xml[^>]{0,200}\?>\s*)?<Message>")
_MESSAGE_ID = re.compile(r"<MessageId>\s*([A-Za-z][A-Za-z0-9_.]{0,80})\s*</MessageId>")


def _message_id(body: bytes) -> str | None:
    """The ``MessageId`` of an iSAMS error document (``InvalidApiKey``…): an enum, never data."""
    text = body[:4000].decode("utf-8", "replace").replace("\x00", "")
    found = _MESSAGE_ID.search(text)
    return found.group(1) if found else None


class IsamsBatchConnector(Connector):
    type = SOURCE
    title = "iSAMS Batch API"

    def extract(self, *, full: bool = True) -> Extract:
        spec = load_batch_format()
        base_url = self._base_url()
        if base_url:
            body, snapshot, where = self._fetch(spec, base_url)
        else:
            folder = self.folder()
            name = str(self.options.get("file") or spec.document.file)
            path = folder / name
            if not path.is_file():
                raise ExtractError(f"{name}: the iSAMS Batch XML file is missing from the folder")
            body = path.read_bytes()
            snapshot = pd.Timestamp(path.stat().st_mtime, unit="s", tz="UTC").floor("s")
            where = name
        if _ERROR_DOCUMENT.match(body):  # checked before parsing: iSAMS labels them UTF-16 but sends UTF-8
            message = _message_id(body)
            error = SetupError if message in KEY_MESSAGES else ExtractError
            raise error(f"{where}: iSAMS returned an error document ({message or 'unknown'})")
        root = parse_xml(body, where)
        if root.tag != spec.document.root:
            raise ExtractError(f"{where}: root element is <{root.tag}>, expected <{spec.document.root}>")
        return Reshape(spec, root, where, snapshot, self.country).extract()

    # ---- HTTP ----------------------------------------------------------------------------------------
    def _base_url(self) -> str | None:
        url = self.options.get("base_url") or self.connection.extra.get("base_url")
        host = self.connection.host
        if not url and self.connection.conn_type in {"http", "https"} and host:
            url = host if "://" in host else f"{self.connection.schema or 'https'}://{host}"
            if self.connection.port and host.count(":") < 2:
                url = f"{url}:{self.connection.port}"
        return str(url).rstrip("/") if url else None

    def _fetch(self, spec: BatchFormat, base_url: str) -> tuple[bytes, pd.Timestamp, str]:
        key = self.connection.password or self.connection.extra.get("api_key")
        if not key:
            raise SetupError(
                f"connection {self.connection.conn_id!r}: no iSAMS Batch API key (set its password)"
            )
        url = base_url + spec.document.endpoint
        attempts = max(1, int(self.options.get("attempts", 4)))
        backoff = float(self.options.get("backoff_seconds", 2.0))
        filters = self.options.get("filters")
        headers = {"Content-Type": "application/xml"} if filters else {}
        content = str(filters).encode("utf-8") if filters else b""
        _redact_httpx_logs()
        problem = "no attempt"
        timeout = httpx.Timeout(float(self.options.get("timeout_seconds", 300)), connect=30.0)
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            for attempt in range(attempts):
                if attempt:
                    time.sleep(backoff * 2 ** (attempt - 1))
                try:
                    response = client.post(url, params={"apiKey": key}, content=content, headers=headers)
                except httpx.TransportError as exc:
                    problem = type(exc).__name__
                    continue
                status = response.status_code
                detail = _message_id(response.content)
                shown = f"HTTP {status}" + (f" {detail}" if detail else "")
                if status in {401, 403}:
                    raise SetupError(
                        f"{url}: {shown}: the iSAMS Batch API refused the key in connection "
                        f"{self.connection.conn_id!r} (check the key, its methods and its IP/domain limits)"
                    )
                if status >= 500 or status in RETRY_STATUSES:
                    problem = shown
                    continue
                if status != 200:  # a redirect or 404: the base URL is wrong
                    raise SetupError(f"{url}: unexpected {shown} (check base_url in the connection)")
                return response.content, _snapshot(response), url
        raise SourceUnavailableError(f"{url}: no usable answer after {attempts} attempt(s) (last: {problem})")


def _snapshot(response: httpx.Response) -> pd.Timestamp:
    for header in ("Last-Modified", "Date"):
        value = response.headers.get(header)
        if value:
            try:
                return pd.Timestamp(parsedate_to_datetime(value)).tz_convert("UTC")
            except (TypeError, ValueError):
                continue
    return pd.Timestamp.now(tz="UTC").floor("s")
