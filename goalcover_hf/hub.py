"""Publishing a run on the Hugging Face Hub: the annotated dataset, then its card, charts and ``goalcover`` key.

Two commits, the fewest the API allows: ``Dataset.push_to_hub`` writes the parquet shards and its own card update
(``dataset_info``, ``configs``) in one; the coverage section, the YAML keys and the charts follow in a second
``create_commit``. That second commit names the commit the card was read at (``parent_commit``), so an edit someone
makes in between is never overwritten: the Hub refuses the commit and nothing changes. With ``create_pr`` both
commits go to one pull request, for repositories whose main branch is protected.

The token is ``token`` when given, else huggingface_hub's usual sources (``HF_TOKEN``, ``hf auth login``); goalcover
never prints or writes it.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

from .card import END, CardError, build_card
from .coverage import CoverageReport, Target
from .errors import GoalcoverError
from .gaps import Gap
from .logging import get_logger

logger = get_logger(__name__)

SPLIT = "train"
ROW_COLUMN = "gc_row"  # an annotations config's row position, when the data has no id column to join on
_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
_CONFIG_NAME = re.compile(r"^[\w][\w.-]*$")
_RESERVED_CONFIGS = {"default", "data"}  # the data's own config, and a name datasets refuses


class HubError(GoalcoverError):
    """The Hub cannot be used as asked; the message says what to do (it never contains a token)."""


class StaleCardError(HubError):
    """The card changed on the Hub after goalcover read it; nothing was committed."""


def _api(repo_id: str, token: str | None = None):
    from huggingface_hub import HfApi, constants, get_token

    if not _REPO_ID.match(repo_id):
        raise HubError(f"{repo_id!r} is not a dataset repo id: use USER/NAME (or ORG/NAME)")
    if constants.HF_HUB_OFFLINE:
        raise HubError("HF_HUB_OFFLINE is set: unset it to talk to the Hub")
    if not token and get_token() is None:
        raise HubError("no Hugging Face token found: run `hf auth login`, set HF_TOKEN or pass --token")
    return HfApi(token=token or None)


def _failed(what: str, err: Exception, token: str | None) -> HubError:
    """A :class:`HubError` for a failed Hub request; the Hub's own words, with any token in them masked."""
    status = getattr(getattr(err, "response", None), "status_code", None)
    text = str(err).replace(token, "***") if token else str(err)
    if status == 412:  # parent_commit is no longer the head
        return StaleCardError(f"{what} was refused: someone committed to the repo after goalcover read it, and "
                              "goalcover never overwrites an edit it has not seen; nothing was changed. Run the same "
                              "command again to merge into the new version")
    return HubError(f"{what} failed: {text}")


def _where(repo_id: str, revision: str | None) -> str:
    return repo_id + (f"@{revision}" if revision else "")


def _card_head(api, repo_id: str, revision: str | None, private: bool) -> str:
    """The commit id the card is read at; a missing repo is created only when ``private`` asks for one."""
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    try:
        return api.repo_info(repo_id, repo_type="dataset", revision=revision).sha
    except RepositoryNotFoundError:
        if not private:
            raise HubError(f"{repo_id}: no such dataset repo on the Hub (or no access); `goalcover push` creates "
                           "one with the data, or pass --private to create an empty private one for the card") from None
        api.create_repo(repo_id, repo_type="dataset", private=True, exist_ok=True)
        if revision:
            api.create_branch(repo_id, branch=revision, repo_type="dataset", exist_ok=True)
        return api.repo_info(repo_id, repo_type="dataset", revision=revision).sha
    except RevisionNotFoundError:
        raise HubError(f"{_where(repo_id, revision)}: no such branch on the Hub; `goalcover push --revision "
                       f"{revision}` creates it with the data") from None


def update_hub_card(repo_id: str, report: CoverageReport, provenance: dict[str, Any], gaps: list[Gap], *,
                    revision: str | None = None, create_pr: bool = False, private: bool = False,
                    token: str | None = None, target: Target | None = None, gap_meta: dict[str, Any] | None = None, template: str | Path | None = None,
                    commit_message: str = "goalcover: update the coverage card"):
    """Update the card of a Hub dataset in place: read README.md at the branch's head, merge, commit with the charts.

    Everything in the card outside goalcover's section and YAML keys is kept byte for byte. The commit names the
    commit the card was read at, so a card edited on the Hub in the meantime is refused (:class:`StaleCardError`),
    never overwritten.

    Args:
        repo_id (``str``): the dataset repo (``user/name``).
        report, provenance, gaps, target, gap_meta, template: as in :func:`~goalcover_hf.card.render_section`; when
            ``provenance`` holds ``annotations`` (:func:`annotations_provenance`), the card says how to join them.
        revision (``str``, *optional*): the branch (or ``refs/pr/N``) to update; main by default.
        create_pr (``bool``, defaults to ``False``): open a pull request with the card instead of committing to
            ``revision``.
        private (``bool``, defaults to ``False``): create the repo, private, when it does not exist (without it a
            missing repo is an error).
        token (``str``, *optional*): a Hub token; by default huggingface_hub finds one (``HF_TOKEN``, ``hf auth
            login``).
        commit_message (``str``): the commit's message.

    Returns:
        ``CommitInfo``: the card commit (its ``pr_url`` is set with ``create_pr``); a :class:`HubError` says what
        to do when the Hub cannot be used.

    Example:
        >>> update_hub_card("user/my-dataset", report, run.provenance, gaps, create_pr=True)
    """
    from huggingface_hub import CommitOperationAdd
    from huggingface_hub.errors import HfHubHTTPError, RemoteEntryNotFoundError

    api = _api(repo_id, token)
    head = _card_head(api, repo_id, revision, private)
    with tempfile.TemporaryDirectory(prefix="goalcover-card-") as tmp:
        try:  # read at the commit id: the text merged is exactly the text at parent_commit
            local = api.hf_hub_download(repo_id, "README.md", repo_type="dataset", revision=head, local_dir=tmp)
            text = Path(local).read_bytes().decode("utf-8")
        except RemoteEntryNotFoundError:
            text = ""  # the Hub says the repo has no card: start one (a failed download is an error, below)
        except (HfHubHTTPError, OSError) as err:  # never start afresh over a card that could not be read
            raise _failed(f"{repo_id}: reading README.md", err, token) from None
        except UnicodeDecodeError:
            raise CardError(f"{repo_id}/README.md is not UTF-8 text; fix it on the Hub first") from None
        folder = Path(tmp) / "goalcover"
        merged, plots = build_card(text, report, provenance, gaps, folder, target=target, gap_meta=gap_meta,
                                   repo_id=repo_id, template=template, source=f"{repo_id}/README.md")
        if provenance.get("annotations"):
            merged = _with_join_note(merged, repo_id, provenance)
        operations = [CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=merged.encode("utf-8"))]
        operations += [CommitOperationAdd(path_in_repo=p.name, path_or_fileobj=str(p)) for p in plots]
        try:
            return api.create_commit(repo_id, operations=operations, commit_message=commit_message,
                                     repo_type="dataset", revision=revision, create_pr=create_pr or None,
                                     parent_commit=head)
        except HfHubHTTPError as err:
            raise _failed(f"{_where(repo_id, revision)}: the card commit", err, token) from None


def check_config_name(config_name: str) -> str:
    """Refuse a config name that would replace the data's own files (``default``) or that datasets refuses.

    Args:
        config_name (``str``): the config the annotations are to go to.

    Returns:
        ``str``: ``config_name``; a :class:`HubError` says why it is refused.
    """
    if config_name in _RESERVED_CONFIGS or not _CONFIG_NAME.match(config_name):
        raise HubError(f"--config-name {config_name!r}: choose a name of its own (letters, digits, '_', '-', '.'), "
                       f"not {' or '.join(sorted(_RESERVED_CONFIGS))}, which would replace the data's files")
    return config_name


def annotations_provenance(run, config_name: str) -> dict[str, Any]:
    """The run's provenance plus ``annotations: {config, join_on}``: where its annotations config is, and the
    columns that join it to the source rows. The id columns are ``id`` and any ``*_id`` column, used when together
    they name each row once; otherwise rows join by position (column ``gc_row``), which holds only while the run's
    rows are the source's first rows in order, so a filtered or synthesized run without ids is refused.

    Args:
        run (:class:`~goalcover_hf.results.Run`): the run.
        config_name (``str``): the config that holds (or will hold) its annotations.

    Returns:
        ``dict[str, Any]``: a new provenance; a :class:`HubError` when the annotations cannot be joined back.
    """
    ds, provenance = run.dataset, run.provenance
    check_config_name(config_name)
    if "synthesis" in provenance:
        raise HubError("this run holds synthetic rows, which are not in the source data: push it whole, without "
                       "--config-name")
    ids = [c for c in ds.column_names if c == "id" or c.endswith("_id")]
    if not ids or not _names_each_row(ds, ids):
        if "filter" in provenance:
            raise HubError("this run was filtered and its data has no id column, so its annotations cannot be "
                           "joined back to the source rows: push it whole, without --config-name")
        ids = [ROW_COLUMN]
    return {**provenance, "annotations": {"config": config_name, "join_on": ids}}


def annotations_only(run, config_name: str) -> tuple[Any, dict[str, Any]]:
    """The run's annotations without the data's text: its id column(s) (or ``gc_row``) and the ``gc_`` columns.

    Args:
        run (:class:`~goalcover_hf.results.Run`): the run.
        config_name (``str``): the config that will hold them.

    Returns:
        ``tuple[datasets.Dataset, dict]``: the annotations, and the provenance of :func:`annotations_provenance`.
    """
    provenance = annotations_provenance(run, config_name)
    ds, ids = run.dataset, provenance["annotations"]["join_on"]
    if ids == [ROW_COLUMN]:
        ds = ds.add_column(ROW_COLUMN, list(range(len(ds))))
    return ds.select_columns([c for c in ds.column_names if c in ids or c.startswith("gc_")]), provenance


def _names_each_row(ds, columns: list[str]) -> bool:
    keys = list(zip(*(ds[c] for c in columns)))
    try:
        return all(None not in k for k in keys) and len(set(keys)) == len(keys)
    except TypeError:  # unhashable values (lists): not an id
        return False


def _with_join_note(merged: str, repo_id: str, provenance: dict[str, Any]) -> str:
    """``merged`` with a note, at the end of goalcover's section, on how to join the annotations config to its rows."""
    split = provenance.get("split") or SPLIT
    config_name, ids = provenance["annotations"]["config"], provenance["annotations"]["join_on"]
    source = provenance.get("source") or {}
    if source.get("id"):
        pin = f', revision="{source["revision"]}"' if source.get("revision") else ""
        rows = f'rows = load_dataset("{source["id"]}", split="{split}"{pin})'
    else:
        rows = f"rows = ...  # the {split} rows that were scored: local data, not in this repository"
    if ids == [ROW_COLUMN]:
        join = (f"joined = concatenate_datasets([rows.select(range(len(scores))), scores], axis=1)  "
                f"# {ROW_COLUMN}: the row's position in the data")
        how, imports = f"by position (column `{ROW_COLUMN}`)", "from datasets import concatenate_datasets, load_dataset"
    else:
        join = f"joined = rows.to_pandas().merge(scores.to_pandas(), on={ids!r}, how=\"left\")"
        how, imports = "on " + ", ".join(f"`{c}`" for c in ids), "from datasets import load_dataset"
    note = (f"\n### Joining the annotations\n\nThe scores are in the `{config_name}` config of this repository "
            f"(split `{split}`): columns {', '.join(f'`{c}`' for c in ids)} and `gc_*` only, not the text. Join "
            f"them to the rows they score {how}:\n\n```python\n{imports}\n\n{rows}\nscores = load_dataset(\"{repo_id}\", "
            f"\"{config_name}\", split=\"{split}\")\n{join}\n```\n")
    head, marker, tail = merged.rpartition(END)
    return head + note + marker + tail


def push_run(run, repo_id: str, report: CoverageReport, gaps: list[Gap], *, private: bool = False,
             revision: str | None = None, create_pr: bool = False, token: str | None = None,
             config_name: str | None = None, target: Target | None = None, gap_meta: dict[str, Any] | None = None,
             template: str | Path | None = None) -> dict[str, Any]:
    """Push a run's annotated dataset (parquet, ``Dataset.push_to_hub``) and then its card and charts.

    Args:
        run (:class:`~goalcover_hf.results.Run`): the run folder's dataset and provenance.
        repo_id (``str``): the dataset repo (``user/name``), created if needed.
        report, gaps, target, gap_meta, template: as in :func:`~goalcover_hf.card.render_section`.
        private (``bool``, defaults to ``False``): whether a new repo is private.
        revision (``str``, *optional*): a branch, created if needed.
        create_pr (``bool``, defaults to ``False``): open one pull request with the data and the card instead of
            committing to the branch (for repositories whose main branch is protected).
        token (``str``, *optional*): a Hub token; by default huggingface_hub finds one.
        config_name (``str``, *optional*): push only the annotations (see :func:`annotations_only`) as this config
            of the repo, beside the data's own (default) config, in the data's split; the card says how to join
            them.

    Returns:
        ``dict``: ``{"dataset_commit": CommitInfo, "card_commit": CommitInfo, "url": str}``; ``url`` is the pull
        request's with ``create_pr``.

    Example:
        >>> push_run(load_run("out"), "org/my-dataset", report, gaps, create_pr=True, config_name="goalcover")
    """
    from huggingface_hub.errors import HfHubHTTPError

    dataset, provenance, split = run.dataset, run.provenance, SPLIT
    if config_name is not None:
        dataset, provenance = annotations_only(run, config_name)
        split = provenance.get("split") or SPLIT
    _api(repo_id, token)  # fail on a bad id, offline mode or a missing token before anything is sent
    try:
        data_commit = dataset.push_to_hub(repo_id, config_name=config_name or "default", split=split,
                                          private=private, revision=revision, create_pr=create_pr, token=token,
                                          commit_message="goalcover: annotated dataset")
    except HfHubHTTPError as err:
        raise _failed(f"{_where(repo_id, revision)}: pushing the dataset", err, token) from None
    card_revision = data_commit.pr_revision if create_pr else revision  # the card joins the data's pull request
    try:
        card_commit = update_hub_card(repo_id, report, provenance, gaps, revision=card_revision, token=token,
                                      target=target, gap_meta=gap_meta, template=template,
                                      commit_message="goalcover: coverage section, charts and metadata")
    except HubError as err:
        rerun = " ".join(["goalcover card", str(run.path or "RUN"), "--repo-id", repo_id]
                         + ["--revision", card_revision] * bool(card_revision)
                         + ["--config-name", config_name] * bool(config_name))
        why = ("someone committed to the repo after the dataset was pushed, and goalcover never overwrites an edit "
               "it has not seen" if isinstance(err, StaleCardError) else str(err))
        raise type(err)(f"the dataset was pushed ({data_commit.commit_url}) but not its card: {why}. To add the "
                        f"card without pushing the data again: {rerun}") from None
    url = data_commit.pr_url if create_pr else (
        f"https://huggingface.co/datasets/{repo_id}" + (f"/tree/{revision}" if revision else ""))
    return {"dataset_commit": data_commit, "card_commit": card_commit, "url": url}
