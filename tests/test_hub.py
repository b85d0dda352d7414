"""Pushing to the Hub, with only the huggingface_hub boundary replaced by a recording fake (tests/fake_hub.py)."""

import io
import json

import pytest
from fake_hub import STALE, FakeHub
from fake_run import SPEC, run_folder

from goalcover_hf import cli
from goalcover_hf.card import END, HEATMAP_NAME, PLOT_NAME, START, read_card
from goalcover_hf.results import load_run, save_run

TOKEN = "hf_PLANTEDsecretTOKEN0123456789"
HEADER_ADDED = "- goalcover\nannotations_creators:\n- machine-generated\n"  # what the card adds to a `tags:` list


@pytest.fixture
def hub(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_TOKEN", TOKEN)  # found by huggingface_hub itself; goalcover must never echo it
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    fake = FakeHub()
    fake.download_dir = tmp_path / "downloads"
    return fake.install(monkeypatch)


def _no_token_configured(monkeypatch, tmp_path):
    """No HF_TOKEN, no token file: huggingface_hub finds no token of its own."""
    from huggingface_hub import constants

    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setenv("HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-tokens"))


def _no_token_anywhere(hub, *texts, folders=()):
    for text in texts:
        assert TOKEN not in text
    for commit in hub.commits:
        for data in commit["files"].values():
            assert TOKEN.encode() not in data
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file():
                assert TOKEN.encode() not in path.read_bytes(), path


def _table(data: bytes):
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(data))


def test_push_creates_repo_and_sends_data_then_card(tmp_path, hub, capsys):
    run = run_folder(tmp_path / "run")
    assert cli.main(["push", str(run), "--repo-id", "me/meds", "--private"]) == 0
    out, err = capsys.readouterr()
    assert "https://huggingface.co/datasets/me/meds" in out
    assert ("create_repo", {"repo_id": "me/meds", "repo_type": "dataset", "private": True}) in hub.calls
    assert len(hub.commits) == 2  # dataset (+ its card update by datasets), then goalcover's card and charts
    data, card = hub.commits
    parquet = [p for p in data["files"] if p.endswith(".parquet")]
    assert parquet == ["data/train-00000-of-00001.parquet"]
    table = _table(data["files"][parquet[0]])
    assert table.num_rows == 20 and table.column("id").to_pylist()[:2] == ["r00", "r01"]
    assert "gc_states_dose_score" in table.column_names and "gc_states_dose_explanation" in table.column_names
    assert set(card["files"]) == {"README.md", PLOT_NAME, HEATMAP_NAME}
    readme = card["files"]["README.md"].decode()
    pushed_by_datasets = data["files"]["README.md"].decode()
    assert "dataset_info:" in readme and "configs:" in readme  # datasets' own card metadata is kept
    assert readme.count(START) == 1 and readme.count(END) == 1
    assert "](https://huggingface.co/datasets/me/meds/viewer/default/train?row=" in readme
    assert card["files"][PLOT_NAME][:4] == b"\x89PNG"
    # the part datasets wrote is unchanged byte for byte: goalcover only added its keys and section
    assert pushed_by_datasets.split("\n---\n", 1)[1] in readme
    header = pushed_by_datasets.split("\n---\n", 1)[0]
    assert readme.startswith(header)
    assert "tags:\n- goalcover\nannotations_creators:\n- machine-generated\ngoalcover:\n" in readme
    # the card commit names the commit it read the card at: the dataset commit's
    assert card["parent_commit"] == data["sha"] and card["create_pr"] is False
    assert not (run / "README.md").exists()
    _no_token_anywhere(hub, out, err, folders=[run, tmp_path])


def test_push_to_a_branch(tmp_path, hub, capsys):
    run = run_folder(tmp_path / "run")
    hub.add_repo("me/meds", {"README.md": b"# Existing\n\nKeep me.\n", "notes.txt": b"mine"})
    assert cli.main(["push", str(run), "--repo-id", "me/meds", "--revision", "v2"]) == 0
    assert ("create_branch", {"repo_id": "me/meds", "branch": "v2"}) in hub.calls
    assert not any(name == "create_repo" for name, _ in hub.calls)  # it exists: no create
    assert all(c["revision"] == "v2" for c in hub.commits) and len(hub.commits) == 2
    assert hub.files("me/meds") == {"README.md": b"# Existing\n\nKeep me.\n", "notes.txt": b"mine"}  # main untouched
    branch = hub.files("me/meds", "v2")
    assert "Keep me." in branch["README.md"].decode() and branch["notes.txt"] == b"mine"
    _no_token_anywhere(hub, *capsys.readouterr())


def test_card_update_in_place_keeps_every_other_byte(tmp_path, hub, capsys):
    run = run_folder(tmp_path / "run")
    original = b"---\nlicense: mit # keep\ntags:\n- medical\n---\n# Meds\n\nWritten by hand.\n"
    hub.add_repo("me/meds", {"README.md": original, "data/train.parquet": b"PAR1"})
    head = hub.sha("me/meds")
    assert cli.main(["card", str(run), "--repo-id", "me/meds"]) == 0
    assert len(hub.commits) == 1
    (commit,) = hub.commits
    assert set(commit["files"]) == {"README.md", PLOT_NAME, HEATMAP_NAME} and commit["deleted"] == []
    assert commit["parent_commit"] == head
    assert ("hf_hub_download", {"repo_id": "me/meds", "filename": "README.md", "revision": head}) in hub.calls
    first = commit["files"]["README.md"].decode()
    assert first.startswith("---\nlicense: mit # keep\ntags:\n- medical\n" + HEADER_ADDED + "goalcover:\n")
    assert first.split("\n---\n", 1)[1].startswith("# Meds\n\nWritten by hand.\n\n" + START)
    assert cli.main(["card", str(run), "--repo-id", "me/meds", "--min-coverage", "0.9"]) == 0
    second = hub.commits[-1]["files"]["README.md"].decode()
    assert second != first
    assert second[second.index(END):] == first[first.index(END):]
    assert second.split("\ngoalcover:\n")[0] == first.split("\ngoalcover:\n")[0]  # tags added once, not twice
    assert hub.files("me/meds")["data/train.parquet"] == b"PAR1"
    assert read_card("me/meds")["target"]["min_fraction"] == 0.9
    _no_token_anywhere(hub, *capsys.readouterr(), folders=[run])


def test_a_card_edited_meanwhile_is_never_overwritten(tmp_path, hub, capsys):
    run = run_folder(tmp_path / "run")
    hub.add_repo("me/meds", {"README.md": b"# Meds\n\nFirst words.\n"})
    theirs = b"# Meds\n\nFirst words.\n\nA paragraph a colleague added while goalcover was working.\n"
    hub.after_download = lambda: hub.edit("me/meds", "README.md", theirs)  # lands between read and commit
    assert cli.main(["card", str(run), "--repo-id", "me/meds"]) == 2
    err = capsys.readouterr().err
    assert ("error: me/meds: the card commit was refused: someone committed to the repo after "
                          "goalcover read it, and goalcover never overwrites an edit it has not seen; nothing was "
                          "changed. Run the same command again") in err, err
    assert STALE not in err and "Traceback" not in err
    assert hub.commits == [] and hub.files("me/meds") == {"README.md": theirs}  # their edit stands, alone
    hub.after_download = None
    assert cli.main(["card", str(run), "--repo-id", "me/meds"]) == 0  # the rerun merges into their version
    merged = hub.files("me/meds")["README.md"].decode()
    assert theirs.decode() in merged and merged.count(START) == 1


def test_push_whose_card_is_refused_says_the_data_is_there(tmp_path, hub, capsys):
    run = run_folder(tmp_path / "run")
    hub.after_download = lambda: hub.edit("me/meds", "notes.txt", b"someone else's commit")
    assert cli.main(["push", str(run), "--repo-id", "me/meds"]) == 2
    err = capsys.readouterr().err
    assert "error: the dataset was pushed (https://huggingface.co/datasets/me/meds/commit/" in err
    assert ("but not its card: someone committed to the repo after the dataset was pushed, and goalcover never "
            f"overwrites an edit it has not seen. To add the card without pushing the data again: goalcover card "
            f"{run} --repo-id me/meds") in err
    assert len(hub.commits) == 1 and hub.files("me/meds")["notes.txt"] == b"someone else's commit"
    hub.after_download = None
    assert cli.main(["card", str(run), "--repo-id", "me/meds"]) == 0
    assert START in hub.files("me/meds")["README.md"].decode()


def test_create_pr_puts_data_and_card_in_one_pull_request(tmp_path, hub, capsys):
    run = run_folder(tmp_path / "run")
    hub.add_repo("org/meds", {"README.md": b"# Org data\n"})
    main = dict(hub.files("org/meds"))
    assert cli.main(["push", str(run), "--repo-id", "org/meds", "--create-pr"]) == 0
    out = capsys.readouterr().out
    assert "Opened a pull request with the dataset and its card: https://huggingface.co/datasets/org/meds/discussions/1" in out
    assert hub.files("org/meds") == main  # main is protected: nothing lands there
    data, card = hub.commits
    assert data["create_pr"] and data["branch"] == "refs/pr/1"
    assert not card["create_pr"] and card["revision"] == "refs/pr/1"  # the card joins the same pull request
    pr = hub.files("org/meds", "refs/pr/1")
    assert "data/train-00000-of-00001.parquet" in pr and START in pr["README.md"].decode()
    assert pr["README.md"].decode().split("\n---\n", 1)[1].startswith("# Org data\n")


def test_card_create_pr_and_private(tmp_path, hub, capsys):
    run = run_folder(tmp_path / "run")
    assert cli.main(["card", str(run), "--repo-id", "me/new"]) == 2
    assert "no such dataset repo" in capsys.readouterr().err and "me/new" not in hub.repos
    assert cli.main(["card", str(run), "--repo-id", "me/new", "--private"]) == 0
    assert hub.repos["me/new"]["private"] and START in hub.files("me/new")["README.md"].decode()
    before = dict(hub.files("me/new"))
    assert cli.main(["card", str(run), "--repo-id", "me/new", "--create-pr", "--min-coverage", "0.9"]) == 0
    assert "Opened a pull request with the card: https://huggingface.co/datasets/me/new/discussions/1" in \
        capsys.readouterr().out
    assert hub.files("me/new") == before  # main untouched; the pull request starts from the commit read
    assert hub.commits[-1]["create_pr"] and hub.commits[-1]["parent_commit"] == hub.sha("me/new")
    assert "min_fraction: 0.9" in hub.files("me/new", "refs/pr/1")["README.md"].decode()


def test_token_flag_is_used_and_never_shown(tmp_path, hub, capsys, monkeypatch):
    _no_token_configured(monkeypatch, tmp_path)
    run = run_folder(tmp_path / "run")
    assert cli.main(["push", str(run), "--repo-id", "me/meds", "--token", TOKEN]) == 0
    assert cli.main(["card", str(run), "--repo-id", "me/meds", "--token", TOKEN]) == 0
    assert hub.tokens and set(hub.tokens) == {TOKEN}  # every request carried it
    assert len(hub.commits) == 3
    hub.after_download = lambda: hub.edit("me/meds", "x", b"x")
    assert cli.main(["card", str(run), "--repo-id", "me/meds", "--token", TOKEN]) == 2  # an error path too
    _no_token_anywhere(hub, *capsys.readouterr(), folders=[run, tmp_path])
    assert TOKEN not in (run / "run.json").read_text()


def test_annotations_config_holds_ids_and_scores_only(tmp_path, hub, capsys):
    import pandas as pd

    run = run_folder(tmp_path / "run")
    source = load_run(run).dataset
    hub.add_repo("me/meds")
    assert cli.main(["push", str(run), "--repo-id", "me/meds"]) == 0  # the data, default config
    data_files = {p: d for p, d in hub.files("me/meds").items() if p.startswith("data/")}
    assert cli.main(["push", str(run), "--repo-id", "me/meds", "--config-name", "goalcover"]) == 0
    assert "Pushed the annotations (config goalcover)" in capsys.readouterr().out
    files = hub.files("me/meds")
    assert {p: d for p, d in files.items() if p.startswith("data/")} == data_files  # the data's config untouched
    table = _table(files["goalcover/train-00000-of-00001.parquet"])
    assert table.column_names == ["id"] + [c for c in source.column_names if c.startswith("gc_")]
    assert "text" not in table.column_names
    readme = files["README.md"].decode()
    header = readme.split("\n---\n", 1)[0]
    assert "config_name: default" in header and "config_name: goalcover" in header
    assert "### Joining the annotations" in readme and "`goalcover` config of this repository" in readme
    assert 'scores = load_dataset("me/meds", "goalcover", split="train")' in readme
    assert "merge(scores.to_pandas(), on=['id'], how=\"left\")" in readme
    assert readme.index("### Joining the annotations") < readme.index(END)
    # ...and that join gives back every score of the run
    rows = pd.DataFrame({"id": source["id"], "text": source["text"]})
    joined = rows.merge(table.to_pandas(), on=["id"], how="left")
    assert joined["gc_states_dose_score"].tolist() == source["gc_states_dose_score"]


def test_annotations_without_ids_join_by_position(tmp_path, hub, capsys):
    from datasets import Dataset, concatenate_datasets

    base = load_run(run_folder(tmp_path / "base"))
    run = save_run(tmp_path / "noid", base.dataset.remove_columns("id"), SPEC,
                   {**base.provenance, "source": {"id": "them/meds", "revision": "a" * 40}})
    assert cli.main(["push", str(run), "--repo-id", "me/scores", "--config-name", "scores"]) == 0
    files = hub.files("me/scores")
    table = _table(files["scores/train-00000-of-00001.parquet"])
    assert table.column("gc_row").to_pylist() == list(range(20)) and "text" not in table.column_names
    readme = files["README.md"].decode()
    assert f'rows = load_dataset("them/meds", split="train", revision="{"a" * 40}")' in readme
    assert "concatenate_datasets([rows.select(range(len(scores))), scores], axis=1)" in readme
    rows = Dataset.from_dict({"text": base.dataset["text"]})
    joined = concatenate_datasets([rows.select(range(len(table))), Dataset(table)], axis=1)
    assert joined["gc_states_dose_score"] == base.dataset["gc_states_dose_score"]
    filtered = save_run(tmp_path / "filtered", base.dataset.remove_columns("id"), SPEC,
                        {**base.provenance, "filter": {"description": "x", "rows_before": 30, "rows_after": 20}})
    assert cli.main(["push", str(filtered), "--repo-id", "me/scores", "--config-name", "scores"]) == 2
    assert "cannot be joined back to the source rows" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["default", "data", "a b"])
def test_config_name_that_would_replace_the_data_is_refused(tmp_path, hub, capsys, name):
    run = run_folder(tmp_path / "run")
    hub.add_repo("me/meds", {"data/train-00000-of-00001.parquet": b"PAR1"})
    assert cli.main(["push", str(run), "--repo-id", "me/meds", "--config-name", name]) == 2
    assert f"--config-name {name!r}: choose a name of its own" in capsys.readouterr().err
    assert hub.commits == [] and hub.files("me/meds") == {"data/train-00000-of-00001.parquet": b"PAR1"}


def test_hub_options_need_a_repo(tmp_path, capsys):
    run = run_folder(tmp_path / "run")
    assert cli.main(["card", str(run), "--create-pr"]) == 2
    assert "--create-pr goes with --repo-id" in capsys.readouterr().err
    assert not (run / "README.md").exists()


def test_hub_errors_are_clear(tmp_path, hub, capsys, monkeypatch):
    from huggingface_hub import constants

    run = run_folder(tmp_path / "run")
    assert cli.main(["card", str(run), "--repo-id", "me/absent"]) == 2
    assert "no such dataset repo" in capsys.readouterr().err
    hub.add_repo("me/there")
    assert cli.main(["card", str(run), "--repo-id", "me/there", "--revision", "nope"]) == 2
    assert "me/there@nope: no such branch on the Hub" in capsys.readouterr().err
    assert cli.main(["push", str(run), "--repo-id", "not a repo"]) == 2
    assert "USER/NAME" in capsys.readouterr().err
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert cli.main(["push", str(run), "--repo-id", "me/meds"]) == 2
    assert "HF_HUB_OFFLINE" in capsys.readouterr().err
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    _no_token_configured(monkeypatch, tmp_path)
    assert cli.main(["push", str(run), "--repo-id", "me/meds"]) == 2
    assert "hf auth login" in capsys.readouterr().err
    assert hub.commits == [] and not any(name == "create_repo" for name, _ in hub.calls)


# ---- where the data came from ------------------------------------------------------------------------------------
def test_score_records_the_hub_dataset_and_its_commit(tmp_path, hub, monkeypatch, tiny_model):
    import datasets

    rows = [{"question": "How much ibuprofen?", "answer": "200 mg every 6 hours."}] * 2
    hub.add_repo("them/meds", {"data/train.jsonl": b"..."})
    hub.edit("them/meds", "README.md", b"# v2")
    sha = hub.sha("them/meds")
    loaded = []

    def load_dataset(path, *args, **kwargs):  # the files themselves are not served by the fake
        loaded.append((path, kwargs))
        return datasets.Dataset.from_list(rows)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    (tmp_path / "goal.yaml").write_text(SPEC.to_yaml(), encoding="utf-8")
    out = tmp_path / "out"
    assert cli.main(["score", "--data", "them/meds", "--spec", str(tmp_path / "goal.yaml"), "--model", tiny_model,
                     "--mode", "logprobs", "--explain", "none", "--no-cache", "-o", str(out)]) == 0
    assert loaded == [("them/meds", {"split": "train", "revision": sha})]  # exactly the commit recorded
    provenance = json.loads((out / "run.json").read_text())
    assert provenance["source"] == {"id": "them/meds", "revision": sha}
    assert provenance["data"] == "them/meds"


def test_hub_source_offline_uses_the_cached_commit(tmp_path, monkeypatch):
    from huggingface_hub import constants

    from goalcover_hf.data import hub_source

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    refs = tmp_path / "datasets--them--meds" / "refs"
    refs.mkdir(parents=True)
    (refs / "main").write_text("b" * 40)
    assert hub_source("them/meds") == {"id": "them/meds", "revision": "b" * 40}
    assert hub_source("them/other") == {"id": "them/other", "revision": None}  # not cached: unknown, not guessed
    data = tmp_path / "rows.jsonl"
    data.write_text('{"text": "x"}\n')
    assert hub_source(str(data)) is None and hub_source("./missing.jsonl") is None
