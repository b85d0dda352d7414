"""A recording stand-in for the Hugging Face Hub at the huggingface_hub boundary.

It replaces only the calls that would leave the machine: ``HfApi.repo_info / create_repo / create_branch /
preupload_lfs_files / create_commit / hf_hub_download``, and the ``HfFileSystem`` that ``Dataset.push_to_hub`` reads
the repo through. Everything above them (datasets' sharding, parquet writing and card update; goalcover's code) runs
for real. Files "on the Hub" are kept per revision in memory.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace


def hub_error(cls, status: int = 404, message: str = "not found"):
    from httpx2 import Request, Response

    return cls(message, response=Response(status, request=Request("GET", "https://huggingface.co/fake")))


@dataclass
class FakeHub:
    repos: dict = field(default_factory=dict)  # repo_id -> {"private": bool, "branches": {name: {path: bytes}}}
    calls: list = field(default_factory=list)  # (method, kwargs) in order
    commits: list = field(default_factory=list)  # {"repo_id", "revision", "message", "files": {path: bytes}, "deleted"}
    preuploaded: dict = field(default_factory=dict)  # path_in_repo -> bytes read at preupload time

    def add_repo(self, repo_id, files=None, private=False):
        self.repos[repo_id] = {"private": private, "branches": {"main": dict(files or {})}}

    def files(self, repo_id, revision=None):
        return self.repos[repo_id]["branches"][revision or "main"]

    def sha(self, repo_id, revision=None):
        files = self.files(repo_id, revision)
        return hashlib.sha1(repr(sorted((k, v) for k, v in files.items())).encode()).hexdigest()

    def _repo(self, repo_id):
        from huggingface_hub.errors import RepositoryNotFoundError

        if repo_id not in self.repos:
            raise hub_error(RepositoryNotFoundError)
        return self.repos[repo_id]

    # ---- HfApi methods (self is the HfApi instance) --------------------------------------------------------------
    def install(self, monkeypatch):
        from huggingface_hub import HfApi

        hub = self

        def repo_info(api, repo_id, repo_type=None, revision=None, **kw):
            hub.calls.append(("repo_info", {"repo_id": repo_id, "revision": revision}))
            hub._repo(repo_id)
            return SimpleNamespace(id=repo_id, sha=hub.sha(repo_id, revision))

        def create_repo(api, repo_id, repo_type=None, private=None, exist_ok=False, **kw):
            hub.calls.append(("create_repo", {"repo_id": repo_id, "repo_type": repo_type, "private": private}))
            if repo_id not in hub.repos:
                hub.add_repo(repo_id, private=bool(private))
            return SimpleNamespace(repo_id=repo_id)

        def create_branch(api, repo_id, branch, repo_type=None, exist_ok=False, **kw):
            hub.calls.append(("create_branch", {"repo_id": repo_id, "branch": branch}))
            branches = hub._repo(repo_id)["branches"]
            branches.setdefault(branch, dict(branches["main"]))

        def preupload_lfs_files(api, repo_id, additions, repo_type=None, revision=None, **kw):
            hub.calls.append(("preupload_lfs_files", {"repo_id": repo_id, "revision": revision,
                                                      "paths": [a.path_in_repo for a in additions]}))
            for op in additions:  # datasets deletes its temporary file right after this call
                hub.preuploaded[op.path_in_repo] = _content(op)

        def create_commit(api, repo_id, operations, commit_message=None, repo_type=None, revision=None, **kw):
            from huggingface_hub import CommitOperationAdd, CommitOperationDelete
            from huggingface_hub.errors import RevisionNotFoundError

            hub.calls.append(("create_commit", {"repo_id": repo_id, "revision": revision, "repo_type": repo_type}))
            branches = hub._repo(repo_id)["branches"]
            if (revision or "main") not in branches:
                raise hub_error(RevisionNotFoundError)
            files = branches[revision or "main"]
            commit = {"repo_id": repo_id, "revision": revision, "message": commit_message, "files": {}, "deleted": []}
            for op in operations:
                if isinstance(op, CommitOperationAdd):
                    data = hub.preuploaded.pop(op.path_in_repo, None)
                    commit["files"][op.path_in_repo] = data if data is not None else _content(op)
                elif isinstance(op, CommitOperationDelete):
                    commit["deleted"].append(op.path_in_repo)
            for path in commit["deleted"]:
                files.pop(path, None)
            files.update(commit["files"])
            hub.commits.append(commit)
            return SimpleNamespace(oid=hub.sha(repo_id, revision), commit_url=f"https://hub.fake/{repo_id}/commit")

        def hf_hub_download(api, repo_id, filename, repo_type=None, revision=None, local_dir=None, **kw):
            from huggingface_hub.errors import EntryNotFoundError, RevisionNotFoundError

            hub.calls.append(("hf_hub_download", {"repo_id": repo_id, "filename": filename, "revision": revision}))
            branches = hub._repo(repo_id)["branches"]
            if (revision or "main") not in branches:
                raise hub_error(RevisionNotFoundError)
            files = branches[revision or "main"]
            if filename not in files:
                raise hub_error(EntryNotFoundError)
            target = Path(local_dir or hub.download_dir) / filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(files[filename])
            return str(target)

        for name, fn in [("repo_info", repo_info), ("create_repo", create_repo), ("create_branch", create_branch),
                         ("preupload_lfs_files", preupload_lfs_files), ("create_commit", create_commit),
                         ("hf_hub_download", hf_hub_download)]:
            monkeypatch.setattr(HfApi, name, fn)
        import datasets.arrow_dataset

        monkeypatch.setattr(datasets.arrow_dataset, "HfFileSystem", lambda *a, **k: _FakeFS(hub))
        return self


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
        for branch in repo["branches"]:
            for path, data in repo["branches"][branch].items():
                fs.pipe_file(f"/datasets/{repo_id}@{hub.sha(repo_id, branch)}/{path}", data)
    return fs
