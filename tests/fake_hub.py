"""A recording stand-in for the Hugging Face Hub at the huggingface_hub boundary.

It replaces only the calls that would leave the machine: ``HfApi.repo_info / dataset_info / create_repo /
create_branch / preupload_lfs_files / create_commit / hf_hub_download``, and the ``HfFileSystem`` that
``Dataset.push_to_hub`` reads the repo through. Everything above them (datasets' sharding, parquet writing and card
update; goalcover's code) runs for real.

It keeps what the Hub keeps: branches (``refs/pr/N`` for pull requests too) whose head is a commit id, and every
commit's files, so a file can be read at a branch or at a commit id. Like the Hub, ``create_commit`` refuses (HTTP
412, "A commit has happened since") a ``parent_commit`` that is no longer the branch's head, and opens a pull
request from ``parent_commit`` (or the head) when ``create_pr`` is set.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

STALE = "A commit has happened since. Please refresh and try again."


def hub_error(cls, status: int = 404, message: str = "not found"):
    from httpx2 import Request, Response

    return cls(message, response=Response(status, request=Request("GET", "https://huggingface.co/fake")))


@dataclass
class FakeHub:
    repos: dict = field(default_factory=dict)  # repo_id -> {"private", "branches": {name: files}, "heads", "prs"}
    snapshots: dict = field(default_factory=dict)  # commit id -> {path: bytes}, every commit ever made
    calls: list = field(default_factory=list)  # (method, kwargs) in order
    commits: list = field(default_factory=list)  # ours: {"repo_id", "revision", "message", "files", "deleted", ...}
    preuploaded: dict = field(default_factory=dict)  # path_in_repo -> bytes read at preupload time
    tokens: list = field(default_factory=list)  # the token each API call was made with (None: discovered)
    after_download: Callable | None = None  # called after each hf_hub_download: someone else's edit, for instance

    def add_repo(self, repo_id, files=None, private=False):
        self.repos[repo_id] = {"private": private, "branches": {}, "heads": {}, "prs": 0}
        self._commit(repo_id, "main", dict(files or {}), parent=repo_id)

    def files(self, repo_id, revision=None):
        """The files at a branch (default main), a pull request ref or a commit id."""
        return self._resolve(repo_id, revision)[1]

    def sha(self, repo_id, revision=None):
        """The commit id a branch (default main) points to."""
        return self._resolve(repo_id, revision)[0]

    def edit(self, repo_id, path, data: bytes, revision=None):
        """Someone else commits ``path`` to a branch (not recorded in ``commits``: only goalcover's are)."""
        branch = revision or "main"
        files = dict(self.repos[repo_id]["branches"][branch])
        files[path] = data
        self._commit(repo_id, branch, files, parent=self.repos[repo_id]["heads"][branch])

    def _commit(self, repo_id, branch, files, parent):
        repo = self.repos[repo_id]
        sha = hashlib.sha1(repr((parent, sorted(files.items()))).encode()).hexdigest()
        self.snapshots[sha] = dict(files)
        repo["branches"][branch], repo["heads"][branch] = dict(files), sha
        return sha

    def _repo(self, repo_id):
        from huggingface_hub.errors import RepositoryNotFoundError

        if repo_id not in self.repos:
            raise hub_error(RepositoryNotFoundError)
        return self.repos[repo_id]

    def _resolve(self, repo_id, revision):
        from huggingface_hub.errors import RevisionNotFoundError

        repo, revision = self._repo(repo_id), revision or "main"
        if revision in repo["heads"]:
            return repo["heads"][revision], repo["branches"][revision]
        known = [sha for sha in self.snapshots if sha.startswith(revision)] if len(revision) >= 5 else []
        if len(known) == 1:
            return known[0], self.snapshots[known[0]]
        raise hub_error(RevisionNotFoundError)

    # ---- HfApi methods (``api`` is the HfApi instance) ------------------------------------------------------------
    def install(self, monkeypatch):
        from huggingface_hub import HfApi

        hub = self

        def seen(api, kw):
            hub.tokens.append(kw.get("token") or api.token)

        def repo_info(api, repo_id, repo_type=None, revision=None, **kw):
            seen(api, kw)
            hub.calls.append(("repo_info", {"repo_id": repo_id, "revision": revision}))
            sha, _ = hub._resolve(repo_id, revision)
            return _Info(id=repo_id, sha=sha, private=hub.repos[repo_id]["private"])

        def dataset_info(api, repo_id, revision=None, **kw):
            return repo_info(api, repo_id, repo_type="dataset", revision=revision, **kw)

        def create_repo(api, repo_id, repo_type=None, private=None, exist_ok=False, **kw):
            seen(api, kw)
            hub.calls.append(("create_repo", {"repo_id": repo_id, "repo_type": repo_type, "private": private}))
            if repo_id not in hub.repos:
                hub.add_repo(repo_id, private=bool(private))
            return _Info(repo_id=repo_id)

        def create_branch(api, repo_id, branch, repo_type=None, revision=None, exist_ok=False, **kw):
            seen(api, kw)
            hub.calls.append(("create_branch", {"repo_id": repo_id, "branch": branch}))
            repo = hub._repo(repo_id)
            if branch not in repo["heads"]:
                sha, files = hub._resolve(repo_id, revision)
                repo["branches"][branch], repo["heads"][branch] = dict(files), sha

        def preupload_lfs_files(api, repo_id, additions, repo_type=None, revision=None, **kw):
            seen(api, kw)
            hub.calls.append(("preupload_lfs_files", {"repo_id": repo_id, "revision": revision,
                                                      "paths": [a.path_in_repo for a in additions]}))
            for op in additions:  # datasets deletes its temporary file right after this call
                hub.preuploaded[op.path_in_repo] = _content(op)

        def create_commit(api, repo_id, operations, commit_message=None, commit_description=None, repo_type=None,
                          revision=None, create_pr=None, parent_commit=None, **kw):
            import re

            from huggingface_hub import CommitInfo, CommitOperationAdd, CommitOperationDelete, constants
            from huggingface_hub.errors import HfHubHTTPError

            seen(api, kw)
            hub.calls.append(("create_commit", {"repo_id": repo_id, "revision": revision, "repo_type": repo_type,
                                                "create_pr": bool(create_pr), "parent_commit": parent_commit}))
            if parent_commit is not None and not constants.REGEX_COMMIT_OID.fullmatch(parent_commit):
                raise ValueError("`parent_commit` is not a valid commit OID")  # as huggingface_hub does
            repo, branch = hub._repo(repo_id), revision or "main"
            head, files = hub._resolve(repo_id, branch)
            if create_pr:  # a pull request starts from parent_commit (the head when not given)
                if branch.startswith("refs/pr/"):
                    raise ValueError("create_pr against a pull request ref")
                head, files = hub._resolve(repo_id, parent_commit or head)
                repo["prs"] += 1
                branch = f"refs/pr/{repo['prs']}"
                repo["branches"][branch], repo["heads"][branch] = dict(files), head
            elif parent_commit is not None and not head.startswith(parent_commit):
                raise hub_error(HfHubHTTPError, 412, STALE)
            commit = {"repo_id": repo_id, "revision": revision, "branch": branch, "message": commit_message,
                      "files": {}, "deleted": [], "parent_commit": parent_commit, "create_pr": bool(create_pr)}
            for op in operations:
                if isinstance(op, CommitOperationAdd):
                    data = hub.preuploaded.pop(op.path_in_repo, None)
                    commit["files"][op.path_in_repo] = data if data is not None else _content(op)
                elif isinstance(op, CommitOperationDelete):
                    commit["deleted"].append(op.path_in_repo)
            files = {p: d for p, d in files.items() if p not in commit["deleted"]} | commit["files"]
            commit["sha"] = sha = hub._commit(repo_id, branch, files, parent=head)
            hub.commits.append(commit)
            url = f"https://huggingface.co/datasets/{repo_id}"
            pr_url = f"{url}/discussions/{re.sub(r'^refs/pr/', '', branch)}" if create_pr else None
            return CommitInfo(commit_url=f"{url}/commit/{sha}", commit_message=commit_message or "",
                              commit_description=commit_description or "", oid=sha, pr_url=pr_url)

        def hf_hub_download(api, repo_id, filename, repo_type=None, revision=None, local_dir=None, **kw):
            from huggingface_hub.errors import RemoteEntryNotFoundError

            seen(api, kw)
            hub.calls.append(("hf_hub_download", {"repo_id": repo_id, "filename": filename, "revision": revision}))
            _, files = hub._resolve(repo_id, revision)
            if filename not in files:
                raise hub_error(RemoteEntryNotFoundError)
            target = Path(local_dir or hub.download_dir) / filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(files[filename])
            if hub.after_download is not None:
                hub.after_download()
            return str(target)

        for name, fn in [("repo_info", repo_info), ("dataset_info", dataset_info), ("create_repo", create_repo),
                         ("create_branch", create_branch), ("preupload_lfs_files", preupload_lfs_files),
                         ("create_commit", create_commit), ("hf_hub_download", hf_hub_download)]:
            monkeypatch.setattr(HfApi, name, fn)
        import datasets.arrow_dataset

        monkeypatch.setattr(datasets.arrow_dataset, "HfFileSystem", lambda *a, **k: _FakeFS(hub))
        return self


class _Info:
    """What ``repo_info`` / ``create_repo`` answer: attributes only."""

    def __init__(self, **values):
        self.__dict__.update(values)


def _content(op) -> bytes:
    source = op.path_or_fileobj
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    if isinstance(source, (str, Path)):
        return Path(source).read_bytes()
    source.seek(0)
    return source.read()


def _FakeFS(hub: FakeHub):
    """An in-memory fsspec filesystem holding the repo files at ``datasets/REPO@SHA/PATH``, as HfFileSystem names them."""
    from fsspec.implementations.memory import MemoryFileSystem

    class RepoFS(MemoryFileSystem):
        cachable = False

    fs = RepoFS()
    fs.store, fs.pseudo_dirs = {}, [""]
    for repo_id, repo in hub.repos.items():
        for branch, sha in repo["heads"].items():
            for path, data in repo["branches"][branch].items():
                fs.pipe_file(f"/datasets/{repo_id}@{sha}/{path}", data)
    return fs
