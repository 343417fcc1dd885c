"""A loopback Hugging Face Hub: the subset of the Hub HTTP API that `huggingface_hub` and `transformers` use to push
and load a model, served by the standard library's `http.server` on 127.0.0.1 (a free port chosen by the OS).

It is a test double for the *network*, not for the client: the real `huggingface_hub` talks to it over HTTP when
`HF_ENDPOINT=http://127.0.0.1:PORT`. Implemented endpoints (model repositories only):

- `POST /api/repos/create`: a repository starts with one commit holding `.gitattributes`, as on the Hub;
  409 when it exists (the client's `exist_ok=True` relies on that).
- `POST /api/validate-yaml`: parses the README front matter.
- `POST /api/models/{repo}/preupload/{rev}`: every file is answered `"uploadMode": "regular"` (contents come
  inline in the commit, no LFS or Xet), with the remote blob id so that unchanged files are skipped.
- `POST /api/models/{repo}/commit/{rev}`: the NDJSON commit (`header`, `file` base64, `deletedFile`,
  `deletedFolder`); `parentCommit` is honoured (412 when stale).
- `POST /api/models/{repo}/branch/{branch}`, `GET .../refs`, `GET .../commits/{rev}`.
- `GET /api/models/{repo}[/revision/{rev}]` (model info with siblings and `cardData`),
  `GET .../tree/{rev}[/{path}]`, `POST .../paths-info/{rev}`.
- `HEAD`/`GET /{repo}/resolve/{rev}/{path}` with `ETag` (the git blob id), `X-Repo-Commit`, `Content-Length` and
  `Range` support; errors carry the `X-Error-Code` the client maps to `RepositoryNotFoundError`,
  `RevisionNotFoundError` or `EntryNotFoundError`.

Writes need `Authorization: Bearer <token>` with the server's token (401 otherwise); private repositories are
hidden (404 `RepoNotFound`) from requests without it. Blobs live under a folder on disk, one file per git blob id;
commits are kept in memory. Every request is recorded in `LoopbackHub.requests` (method, path, status, whether an
`Authorization` header came) so that tests can count commits and downloads; the token itself is never recorded.

Run it by hand with `python tests/hub_server.py [--root DIR] [--token TOKEN]`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

DEFAULT_BRANCH = "main"
GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n"


def git_blob_id(content: bytes) -> str:
    """The git object id of a blob (what the Hub reports as a regular file's `oid` and `ETag`)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def now_iso() -> str:
    """The current UTC time in the Hub's ISO-8601 format."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class HubError(Exception):
    """An HTTP error answer: status, the `X-Error-Code` the client dispatches on, and a message."""

    def __init__(
        self,
        status: int,
        message: str,
        error_code: str | None = None,
        repo_commit: str | None = None,
        extra: dict | None = None,
    ):
        super().__init__(message)
        self.extra = extra or {}
        self.status = status
        self.message = message
        self.error_code = error_code
        self.repo_commit = repo_commit


@dataclass
class Commit:
    """One commit: its id, parent, title and the full file table (path -> git blob id)."""

    oid: str
    parent: str | None
    title: str
    message: str
    date: str
    files: dict[str, str]


@dataclass
class Repository:
    """A model repository: visibility, branches (name -> commit id) and every commit ever made."""

    repo_id: str
    private: bool
    created_at: str
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit:
        """The commit named by a branch or a full commit id; `HubError` 404 `RevisionNotFound` otherwise."""
        if revision in self.branches:
            return self.commits[self.branches[revision]]
        if revision in self.commits:
            return self.commits[revision]
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")


class HubStore:
    """Repositories and blobs of the loopback Hub; blobs are files named by their git blob id under `root`."""

    def __init__(self, root: Path):
        self.root = Path(root)
        (self.root / "blobs").mkdir(parents=True, exist_ok=True)
        self.repositories: dict[str, Repository] = {}
        self.lock = threading.Lock()

    def put_blob(self, content: bytes) -> str:
        """Store `content` and return its git blob id."""
        oid = git_blob_id(content)
        path = self.root / "blobs" / oid
        if not path.exists():
            path.write_bytes(content)
        return oid

    def blob(self, oid: str) -> bytes:
        """The content of a stored blob."""
        return (self.root / "blobs" / oid).read_bytes()

    def create_repository(self, repo_id: str, private: bool, url: str) -> Repository:
        """A new repository whose first commit holds `.gitattributes`; `HubError` 409 (with its `url`) if it exists."""
        with self.lock:
            if repo_id in self.repositories:
                raise HubError(409, "You already created this model repo", extra={"url": url})
            repository = Repository(repo_id=repo_id, private=private, created_at=now_iso())
            self.repositories[repo_id] = repository
            self._commit(
                repository, DEFAULT_BRANCH, {".gitattributes": self.put_blob(GITATTRIBUTES)}, "initial commit", ""
            )
            return repository

    def _commit(self, repository: Repository, branch: str, files: dict[str, str], title: str, message: str) -> Commit:
        parent = repository.branches.get(branch)
        date = now_iso()
        seed = json.dumps([repository.repo_id, parent, sorted(files.items()), title, message, time.time_ns()])
        commit = Commit(hashlib.sha1(seed.encode()).hexdigest(), parent, title, message, date, dict(files))
        repository.commits[commit.oid] = commit
        repository.branches[branch] = commit.oid
        return commit

    def apply_commit(self, repository: Repository, branch: str, lines: list[dict]) -> Commit:
        """
        Apply an NDJSON commit payload to `branch`.

        Args:
            repository (`Repository`): the target repository.
            branch (`str`): an existing branch.
            lines (`list[dict]`): the decoded NDJSON items (`header` first).
        """
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "The commit payload must start with a header line.")
        header = lines[0]["value"]
        with self.lock:
            if branch not in repository.branches:
                raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
            head = repository.branches[branch]
            if header.get("parentCommit") not in (None, head):
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            files = dict(repository.commits[head].files)
            for item in lines[1:]:
                key, value = item.get("key"), item.get("value", {})
                path = value.get("path", "")
                if not path or path.startswith("/") or ".." in path.split("/"):
                    raise HubError(400, f"Invalid path in commit: {path!r}")
                if key == "file":
                    if value.get("encoding") != "base64":
                        raise HubError(400, f"Unsupported encoding {value.get('encoding')!r} for {path}.")
                    files[path] = self.put_blob(base64.b64decode(value["content"]))
                elif key == "deletedFile":
                    if path not in files:
                        raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                    del files[path]
                elif key == "deletedFolder":
                    prefix = path.rstrip("/") + "/"
                    files = {name: oid for name, oid in files.items() if not name.startswith(prefix)}
                elif key == "lfsFile":
                    raise HubError(
                        400, f"{path}: this loopback Hub answers 'regular' upload mode only; no LFS/Xet files."
                    )
                else:
                    raise HubError(400, f"Unknown commit operation {key!r}.")
            return self._commit(repository, branch, files, header.get("summary", ""), header.get("description", ""))

    def create_branch(self, repository: Repository, branch: str, starting_point: str | None) -> None:
        """A new branch at `starting_point` (default: the head of main); `HubError` 409 if it exists."""
        with self.lock:
            if branch in repository.branches:
                raise HubError(409, f"Reference already exists: refs/heads/{branch}")
            repository.branches[branch] = repository.resolve(starting_point or DEFAULT_BRANCH).oid


class HubRequestHandler(BaseHTTPRequestHandler):
    """Routes one request of the Hub API to the `HubStore` of its server."""

    server: LoopbackHTTPServer
    protocol_version = "HTTP/1.1"

    # ---------------------------------------------------------------- plumbing
    def log_message(self, format: str, *args) -> None:
        """Requests are recorded in `LoopbackHub.requests`; nothing goes to stderr."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        segments = [unquote(part) for part in url.path.strip("/").split("/")]
        query = parse_qs(url.query)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) if method == "POST" else b""
        status = 500
        try:
            status = self._route(method, segments, query, body)
        except HubError as error:
            status = error.status
            self._send_error(error, head=method == "HEAD")
        except Exception as error:  # an unexpected request: answer 500 with the reason, keep serving
            status = 500
            self._send_error(HubError(500, f"Loopback Hub failure: {error!r}"), head=method == "HEAD")
        finally:
            self.server.hub.record(method, url.path, status, "Authorization" in self.headers)

    def _send_json(self, payload, status: int = 200, headers: dict[str, str] | None = None) -> int:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        return status

    def _send_error(self, error: HubError, head: bool) -> None:
        data = json.dumps({"error": error.message, **error.extra}).encode()
        self.send_response(error.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Error-Message", error.message)
        if error.error_code:
            self.send_header("X-Error-Code", error.error_code)
        if error.repo_commit:
            self.send_header("X-Repo-Commit", error.repo_commit)
        self.end_headers()
        if not head:
            self.wfile.write(data)

    # ---------------------------------------------------------------- auth and lookup
    def _authenticated(self) -> bool:
        return self.headers.get("Authorization", "") == f"Bearer {self.server.hub.token}"

    def _require_write(self) -> None:
        if not self._authenticated():
            raise HubError(401, "Invalid credentials in Authorization header")

    def _repository(self, repo_id: str) -> Repository:
        repository = self.server.hub.store.repositories.get(repo_id)
        if repository is None or (repository.private and not self._authenticated()):
            raise HubError(404, f"Repository not found: {repo_id}", "RepoNotFound")
        return repository

    # ---------------------------------------------------------------- routes
    def _route(self, method: str, segments: list[str], query: dict, body: bytes) -> int:
        hub = self.server.hub
        if segments[:3] == ["api", "repos", "create"] and method == "POST":
            return self._create_repo(json.loads(body or b"{}"))
        if segments[:2] == ["api", "validate-yaml"] and method == "POST":
            return self._validate_yaml(json.loads(body or b"{}"))
        if segments[:2] == ["api", "whoami-v2"]:
            if not self._authenticated():
                raise HubError(401, "Invalid credentials in Authorization header")
            return self._send_json({"type": "user", "name": hub.user, "orgs": [], "auth": {"type": "access_token"}})
        if len(segments) >= 4 and segments[0] == "api":
            if segments[1] != "models":
                raise HubError(
                    404, f"The loopback Hub serves model repositories only, not {segments[1]}.", "RepoNotFound"
                )
            repo_id = f"{segments[2]}/{segments[3]}"
            return self._repo_api(method, repo_id, segments[4:], query, body)
        if len(segments) >= 5 and segments[2] == "resolve" and method in ("GET", "HEAD"):
            return self._resolve(method, f"{segments[0]}/{segments[1]}", segments[3], "/".join(segments[4:]))
        raise HubError(404, f"No route for {method} /{'/'.join(segments)} in the loopback Hub.")

    def _repo_api(self, method: str, repo_id: str, rest: list[str], query: dict, body: bytes) -> int:
        action = rest[0] if rest else None
        if method == "POST" and action != "paths-info":
            self._require_write()
        repository = self._repository(repo_id)
        if action is None and method == "GET":
            return self._send_json(self._model_info(repository, repository.resolve(DEFAULT_BRANCH)))
        if action == "revision" and method == "GET":
            return self._send_json(self._model_info(repository, repository.resolve(rest[1])))
        if action == "preupload" and method == "POST":
            return self._preupload(repository, rest[1], json.loads(body))
        if action == "commit" and method == "POST":
            if query.get("create_pr"):
                raise HubError(400, "Pull requests are not supported by the loopback Hub.")
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            commit = self.server.hub.store.apply_commit(repository, rest[1], lines)
            return self._send_json(
                {
                    "success": True,
                    "commitOid": commit.oid,
                    "hookOutput": "",
                    "commitUrl": f"{self.server.hub.endpoint}/{repository.repo_id}/commit/{commit.oid}",
                }
            )
        if action == "branch" and method == "POST":
            payload = json.loads(body or b"{}")
            self.server.hub.store.create_branch(repository, rest[1], payload.get("startingPoint"))
            return self._send_json({})
        if action == "refs" and method == "GET":
            branches = [
                {"name": name, "ref": f"refs/heads/{name}", "targetCommit": oid}
                for name, oid in repository.branches.items()
            ]
            return self._send_json({"branches": branches, "tags": [], "converts": []})
        if action == "commits" and method == "GET":
            return self._send_json(self._history(repository, repository.resolve(rest[1])))
        if action == "tree" and method == "GET":
            recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
            return self._send_json(self._tree(repository.resolve(rest[1]), "/".join(rest[2:]), recursive))
        if action == "paths-info" and method == "POST":
            return self._paths_info(repository.resolve(rest[1]), body)
        raise HubError(404, f"No route for {method} api/models/{repo_id}/{'/'.join(rest)} in the loopback Hub.")

    def _create_repo(self, payload: dict) -> int:
        self._require_write()
        if payload.get("type") not in (None, "model"):
            raise HubError(400, "The loopback Hub creates model repositories only.")
        name, organization = payload.get("name"), payload.get("organization") or self.server.hub.user
        if not name:
            raise HubError(400, "A repository name is required.")
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        repo_id = f"{organization}/{name}"
        repository = self.server.hub.store.create_repository(repo_id, private, f"{self.server.hub.endpoint}/{repo_id}")
        return self._send_json({"url": f"{self.server.hub.endpoint}/{repository.repo_id}", "name": repository.repo_id})

    def _validate_yaml(self, payload: dict) -> int:
        content = payload.get("content", "")
        if content.startswith("---"):
            try:
                yaml.safe_load(content.split("---", 2)[1])
            except (yaml.YAMLError, IndexError) as error:
                return self._send_json({"errors": [{"message": str(error)}], "warnings": []}, status=400)
        return self._send_json({"errors": [], "warnings": []})

    def _preupload(self, repository: Repository, revision: str, payload: dict) -> int:
        try:
            files = repository.resolve(revision).files
        except HubError:
            files = {}  # a branch that does not exist yet: the commit itself will say so
        answers = [
            {"path": item["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": files.get(item["path"])}
            for item in payload.get("files", [])
        ]
        return self._send_json({"files": answers, "commitOid": repository.branches.get(revision)})

    def _file_entry(self, path: str, oid: str) -> dict:
        return {
            "type": "file",
            "oid": oid,
            "size": (self.server.hub.store.root / "blobs" / oid).stat().st_size,
            "path": path,
        }

    def _tree(self, commit: Commit, folder: str, recursive: bool) -> list[dict]:
        prefix = folder.strip("/") + "/" if folder.strip("/") else ""
        entries, seen_folders = [], set()
        for path, oid in sorted(commit.files.items()):
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix) :]
            if "/" in rest and not recursive:
                child = prefix + rest.split("/", 1)[0]
                if child not in seen_folders:
                    seen_folders.add(child)
                    entries.append(
                        {"type": "directory", "oid": hashlib.sha1(child.encode()).hexdigest(), "path": child}
                    )
                continue
            if recursive:
                for depth in range(1, rest.count("/") + 1):
                    child = prefix + "/".join(rest.split("/")[:depth])
                    if child not in seen_folders:
                        seen_folders.add(child)
                        entries.append(
                            {"type": "directory", "oid": hashlib.sha1(child.encode()).hexdigest(), "path": child}
                        )
            entries.append(self._file_entry(path, oid))
        if prefix and not entries:
            raise HubError(404, f"Entry not found: {folder}", "EntryNotFound", repo_commit=commit.oid)
        return entries

    def _paths_info(self, commit: Commit, body: bytes) -> int:
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("application/json"):
            paths = json.loads(body).get("paths", [])
        else:
            paths = parse_qs(body.decode()).get("paths", [])
        found = []
        for path in paths:
            if path in commit.files:
                found.append(self._file_entry(path, commit.files[path]))
            elif any(name.startswith(path.rstrip("/") + "/") for name in commit.files):
                found.append({"type": "directory", "oid": hashlib.sha1(path.encode()).hexdigest(), "path": path})
        return self._send_json(found)

    def _history(self, repository: Repository, commit: Commit) -> list[dict]:
        history = []
        while commit is not None:
            history.append(
                {
                    "id": commit.oid,
                    "title": commit.title,
                    "message": commit.message,
                    "date": commit.date,
                    "authors": [{"user": self.server.hub.user}],
                }
            )
            commit = repository.commits.get(commit.parent) if commit.parent else None
        return history

    def _model_info(self, repository: Repository, commit: Commit) -> dict:
        store = self.server.hub.store
        card_data = {}
        if "README.md" in commit.files:
            text = store.blob(commit.files["README.md"]).decode("utf-8", errors="replace")
            if text.startswith("---"):
                try:
                    card_data = yaml.safe_load(text.split("---", 2)[1]) or {}
                except (yaml.YAMLError, IndexError):
                    card_data = {}
        config = {}
        if "config.json" in commit.files:
            full = json.loads(store.blob(commit.files["config.json"]))
            config = {key: full[key] for key in ("architectures", "model_type", "auto_map") if key in full}
        return {
            "_id": hashlib.sha1(repository.repo_id.encode()).hexdigest()[:24],
            "id": repository.repo_id,
            "modelId": repository.repo_id,
            "author": repository.repo_id.split("/")[0],
            "sha": commit.oid,
            "lastModified": commit.date,
            "createdAt": repository.created_at,
            "private": repository.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "library_name": card_data.get("library_name"),
            "pipeline_tag": card_data.get("pipeline_tag"),
            "tags": list(card_data.get("tags") or []),
            "cardData": card_data,
            "config": config,
            "siblings": [{"rfilename": path} for path in sorted(commit.files)],
        }

    def _resolve(self, method: str, repo_id: str, revision: str, path: str) -> int:
        repository = self._repository(repo_id)
        commit = repository.resolve(revision)
        if path not in commit.files:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", repo_commit=commit.oid)
        oid = commit.files[path]
        content = self.server.hub.store.blob(oid)
        start, status = 0, 200
        ranged = self.headers.get("Range", "")
        if ranged.startswith("bytes=") and method == "GET":
            first = ranged[len("bytes=") :].split("-", 1)[0]
            start, status = (int(first), 206) if first.isdigit() and int(first) < len(content) else (0, 200)
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(content) - start))
        self.send_header("ETag", f'"{oid}"')
        self.send_header("X-Repo-Commit", commit.oid)
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(content) - 1}/{len(content)}")
        self.end_headers()
        if method == "GET":
            self.wfile.write(content[start:])
        return status


class LoopbackHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its `LoopbackHub`."""

    daemon_threads = True

    def __init__(self, hub: LoopbackHub):
        self.hub = hub
        super().__init__(("127.0.0.1", 0), HubRequestHandler)


@dataclass
class RecordedRequest:
    """One request the loopback Hub answered (never with its headers: no token is kept)."""

    method: str
    path: str
    status: int
    authorized: bool


class LoopbackHub:
    """
    A Hub-protocol server on 127.0.0.1 and a free port, serving from a background thread.

    Args:
        root (`str` or `Path`, *optional*): where blobs are stored; a new temporary folder when omitted.
        token (`str`, *optional*, defaults to `"hf_loopback_test_token"`): the only token that may write.
        user (`str`, *optional*, defaults to `"tester"`): the user `whoami` reports.

    Use as a context manager (`with LoopbackHub() as hub: ... hub.endpoint ...`) or with `start()`/`stop()`.
    """

    def __init__(self, root: str | Path | None = None, token: str = "hf_loopback_test_token", user: str = "tester"):
        self._temporary = None if root is not None else tempfile.TemporaryDirectory(prefix="loopback-hub-")
        self.store = HubStore(Path(root) if root is not None else Path(self._temporary.name))
        self.token = token
        self.user = user
        self.requests: list[RecordedRequest] = []
        self._requests_lock = threading.Lock()
        self._server: LoopbackHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        """`http://127.0.0.1:PORT`, the value for `HF_ENDPOINT`."""
        if self._server is None:
            raise RuntimeError("The loopback Hub is not started.")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def record(self, method: str, path: str, status: int, authorized: bool) -> None:
        """Remember one answered request."""
        with self._requests_lock:
            self.requests.append(RecordedRequest(method, path, status, authorized))

    def requests_matching(self, method: str, path_part: str) -> list[RecordedRequest]:
        """The recorded requests with this method whose path contains `path_part`."""
        with self._requests_lock:
            return [r for r in self.requests if r.method == method and path_part in r.path]

    def files(self, repo_id: str, revision: str = DEFAULT_BRANCH) -> dict[str, bytes]:
        """The files of a repository at a revision, read straight from the store."""
        commit = self.store.repositories[repo_id].resolve(revision)
        return {path: self.store.blob(oid) for path, oid in commit.files.items()}

    def start(self) -> LoopbackHub:
        """Bind 127.0.0.1 on a free port and serve in a daemon thread."""
        self._server = LoopbackHTTPServer(self)
        self._thread = threading.Thread(target=self._server.serve_forever, name="loopback-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and remove the temporary storage."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._temporary is not None:
            self._temporary.cleanup()
            self._temporary = None

    def __enter__(self) -> LoopbackHub:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def main() -> None:
    """Serve until interrupted, printing the endpoint to use as `HF_ENDPOINT`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=None, help="Folder for blobs (default: a temporary folder).")
    parser.add_argument("--token", default="hf_loopback_test_token", help="The token allowed to write.")
    args = parser.parse_args()
    hub = LoopbackHub(args.root, token=args.token).start()
    print(f"HF_ENDPOINT={hub.endpoint}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        hub.stop()


if __name__ == "__main__":
    main()
