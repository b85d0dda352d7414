"""Publishing a run on the Hugging Face Hub: the annotated dataset, then its card, charts and ``goalcover`` key.

Two commits, the fewest the API allows: ``Dataset.push_to_hub`` writes the parquet shards and its own card update
(``dataset_info``, ``configs``) in one; the coverage section, the YAML key and the charts follow in a second
``create_commit``. The token comes from huggingface_hub's usual sources (``HF_TOKEN``, ``hf auth login``); goalcover
never reads, prints or writes it.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

from .card import CardError, build_card
from .coverage import CoverageReport, Target
from .errors import GoalcoverError
from .gaps import Gap
from .logging import get_logger

logger = get_logger(__name__)

SPLIT = "train"
_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


class HubError(GoalcoverError):
    """The Hub cannot be used as asked; the message says what to do (it never contains a token)."""


def _api(repo_id: str):
    from huggingface_hub import HfApi, constants, get_token

    if not _REPO_ID.match(repo_id):
        raise HubError(f"{repo_id!r} is not a dataset repo id: use USER/NAME (or ORG/NAME)")
    if constants.HF_HUB_OFFLINE:
        raise HubError("HF_HUB_OFFLINE is set: unset it to talk to the Hub")
    if get_token() is None:
        raise HubError("no Hugging Face token found: run `hf auth login` or set HF_TOKEN")
    return HfApi()


def update_hub_card(repo_id: str, report: CoverageReport, provenance: dict[str, Any], gaps: list[Gap], *,
                    revision: str | None = None, target: Target | None = None, gap_meta: dict[str, Any] | None = None,
                    template: str | Path | None = None, commit_message: str = "goalcover: update the coverage card"):
    """Update the card of an existing Hub dataset in place: download README.md, merge, upload with the charts.

    Everything in the card outside goalcover's section and ``goalcover`` key is kept byte for byte.

    Args:
        repo_id (``str``): the dataset repo (``user/name``).
        report, provenance, gaps, target, gap_meta, template: as in :func:`~goalcover_hf.card.render_section`.
        revision (``str``, *optional*): the branch to update.
        commit_message (``str``): the commit's message.

    Returns:
        ``CommitInfo``: the card commit; a :class:`HubError` says what to do when the Hub cannot be used.

    Example:
        >>> update_hub_card("user/my-dataset", report, run.provenance, gaps)
    """
    from huggingface_hub import CommitOperationAdd
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    api = _api(repo_id)
    with tempfile.TemporaryDirectory(prefix="goalcover-card-") as tmp:
        try:
            local = api.hf_hub_download(repo_id, "README.md", repo_type="dataset", revision=revision, local_dir=tmp)
            text = Path(local).read_bytes().decode("utf-8")
        except (RepositoryNotFoundError, RevisionNotFoundError):
            raise HubError(f"{repo_id}{'@' + revision if revision else ''}: no such dataset repo or revision on the "
                           "Hub (or no access); `goalcover push` creates one") from None
        except EntryNotFoundError:
            text = ""  # a repo without a card: start one
        except UnicodeDecodeError:
            raise CardError(f"{repo_id}/README.md is not UTF-8 text; fix it on the Hub first") from None
        folder = Path(tmp) / "goalcover"
        merged, plots = build_card(text, report, provenance, gaps, folder, target=target, gap_meta=gap_meta,
                                   repo_id=repo_id, template=template, source=f"{repo_id}/README.md")
        operations = [CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=merged.encode("utf-8"))]
        operations += [CommitOperationAdd(path_in_repo=p.name, path_or_fileobj=str(p)) for p in plots]
        try:
            return api.create_commit(repo_id, operations=operations, commit_message=commit_message,
                                     repo_type="dataset", revision=revision)
        except HfHubHTTPError as err:
            raise HubError(f"{repo_id}: the card commit failed: {err}") from None


def push_run(run, repo_id: str, report: CoverageReport, gaps: list[Gap], *, private: bool = False,
             revision: str | None = None, target: Target | None = None, gap_meta: dict[str, Any] | None = None,
             template: str | Path | None = None) -> dict[str, Any]:
    """Push a run's annotated dataset (parquet, ``Dataset.push_to_hub``) and then its card and charts.

    Args:
        run (:class:`~goalcover_hf.results.ScoredRun`): the run folder's dataset and provenance.
        repo_id (``str``): the dataset repo (``user/name``), created if needed.
        report, gaps, target, gap_meta, template: as in :func:`~goalcover_hf.card.render_section`.
        private (``bool``, defaults to ``False``): whether a new repo is private.
        revision (``str``, *optional*): a branch, created if needed.

    Returns:
        ``dict``: ``{"dataset_commit": CommitInfo, "card_commit": CommitInfo, "url": str}``.

    Example:
        >>> push_run(load_run("out"), "user/my-dataset", report, gaps, private=True)
    """
    from huggingface_hub.errors import HfHubHTTPError

    _api(repo_id)  # fail on a bad id, offline mode or a missing token before anything is sent
    try:
        data_commit = run.dataset.push_to_hub(repo_id, split=SPLIT, private=private, revision=revision,
                                              commit_message="goalcover: annotated dataset")
    except HfHubHTTPError as err:
        raise HubError(f"{repo_id}: pushing the dataset failed: {err}") from None
    card_commit = update_hub_card(repo_id, report, run.provenance, gaps, revision=revision, target=target,
                                  gap_meta=gap_meta, template=template,
                                  commit_message="goalcover: coverage section, charts and metadata")
    url = f"https://huggingface.co/datasets/{repo_id}" + (f"/tree/{revision}" if revision else "")
    return {"dataset_commit": data_commit, "card_commit": card_commit, "url": url}
