"""TUF's fetcher for a repository on a USB stick (a directory) or on a laptop (http/https).

Downloads go to files on disk under the updater's download directory, never to RAM or /tmp
(which is RAM on a Pi), bounded by the length TUF expects. An interrupted download is
resumed: the bytes already received stay in ``<name>.part`` and the next attempt asks for
the rest (an HTTP ``Range`` request, or a seek in a local file). A part that fails
verification is deleted, so a resumed download can never keep bad bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlparse

import urllib3
from tuf.api import exceptions
from tuf.ngclient import FetcherInterface

#: Bytes read at a time.
CHUNK = 256 * 1024
#: Connect / read deadline of one HTTP request, s.
HTTP_TIMEOUT_S = 30.0


def source_urls(source: str) -> tuple[str, str]:
    """``(metadata_base_url, targets_base_url)`` of a repository directory or URL.

    A directory may be the repository itself (``metadata/`` + ``targets/``) or the
    publisher's working directory, whose ``public/`` is served.
    """
    if "://" in source:
        base = source.rstrip("/")
        return f"{base}/metadata/", f"{base}/targets/"
    path = Path(source).expanduser().resolve()
    if (path / "public" / "metadata").is_dir():
        path = path / "public"
    return f"{path.as_uri()}/metadata/", f"{path.as_uri()}/targets/"


class ResumableFetcher(FetcherInterface):
    """Fetches ``file://`` and ``http(s)://`` URLs, into resumable files in *download_dir*."""

    def __init__(self, download_dir: Path, user_agent: str = "spectra-edge-ota") -> None:
        self.download_dir = download_dir
        self._http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=HTTP_TIMEOUT_S, read=HTTP_TIMEOUT_S),
            retries=False,
            headers={"User-Agent": user_agent},
        )
        #: ``(received, expected)`` of the last download that ended short, else None.
        self.last_short: tuple[int, int] | None = None

    # -- the stream: only used by fetch()/download_bytes() for metadata --------------------
    def _fetch(self, url: str) -> Iterator[bytes]:
        return self._stream(url, 0)

    def _stream(self, url: str, offset: int) -> Iterator[bytes]:
        parsed = urlparse(url)
        if parsed.scheme == "file":
            return self._stream_file(Path(unquote(parsed.path)), offset)
        if parsed.scheme in ("http", "https"):
            return self._stream_http(url, offset)
        raise exceptions.DownloadError(f"unsupported URL scheme: {url}")

    @staticmethod
    def _stream_file(path: Path, offset: int) -> Iterator[bytes]:
        try:
            fh = open(path, "rb")  # noqa: SIM115 (closed by the generator)
        except FileNotFoundError as err:
            raise exceptions.DownloadHTTPError(f"not found: {path}", 404) from err
        except OSError as err:
            raise exceptions.DownloadError(f"cannot read {path}: {err}") from err

        def chunks() -> Iterator[bytes]:
            with fh:
                fh.seek(offset)
                while block := fh.read(CHUNK):
                    yield block

        return chunks()

    def _stream_http(self, url: str, offset: int) -> Iterator[bytes]:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            resp = self._http.request("GET", url, headers=headers, preload_content=False)
        except urllib3.exceptions.HTTPError as err:
            raise exceptions.DownloadError(f"cannot reach {url}: {err}") from err
        if resp.status >= 400:
            resp.release_conn()
            raise exceptions.DownloadHTTPError(f"HTTP {resp.status} for {url}", resp.status)
        if offset and resp.status != 206:
            resp.release_conn()
            raise _RangeIgnored

        def chunks() -> Iterator[bytes]:
            try:
                yield from resp.stream(CHUNK)
            except urllib3.exceptions.HTTPError as err:
                raise exceptions.DownloadError(f"download of {url} broke off: {err}") from err
            finally:
                resp.release_conn()

        return chunks()

    # -- targets: a resumable file on disk -------------------------------------------------
    def part_path(self, url: str) -> Path:
        """Where the bytes of *url* received so far are kept."""
        name = urlparse(url).path.rsplit("/", 1)[-1][-80:]
        digest = hashlib.sha256(url.encode()).hexdigest()[:16]
        return self.download_dir / f"{digest}-{name}.part"

    @contextlib.contextmanager
    def download_file(self, url: str, max_length: int) -> Iterator[IO[bytes]]:
        """Download *url* (at most *max_length* bytes) resuming a previous part; yield it.

        The part is deleted if the caller's verification fails, kept if the source broke off.
        """
        self.download_dir.mkdir(parents=True, exist_ok=True)
        part = self.part_path(url)
        self.last_short = None
        have = part.stat().st_size if part.exists() else 0
        if have > max_length:
            part.unlink()
            have = 0
        try:
            chunks = self._stream(url, have) if have < max_length else iter(())
        except _RangeIgnored:
            part.unlink()
            have = 0
            chunks = self._stream(url, 0)
        except exceptions.DownloadError:
            raise
        except Exception as err:
            raise exceptions.DownloadError(f"failed to download {url}: {err}") from err
        with open(part, "ab") as out:
            received = have
            for block in chunks:
                received += len(block)
                if received > max_length:
                    out.close()
                    part.unlink()
                    raise exceptions.DownloadLengthMismatchError(
                        f"{url}: more than the {max_length} bytes the metadata allows"
                    )
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if received < max_length:
            self.last_short = (received, max_length)
        fh = open(part, "rb")  # noqa: SIM115 (closed below)
        try:
            yield fh
        except exceptions.RepositoryError:
            fh.close()
            if self.last_short is None:  # complete but wrong: never resume from it
                part.unlink(missing_ok=True)
            raise
        finally:
            fh.close()
        part.unlink(missing_ok=True)


class _RangeIgnored(Exception):
    """The server answered a range request with the whole file."""
