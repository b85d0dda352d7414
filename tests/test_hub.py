"""Pushing to the Hub, with only the huggingface_hub boundary replaced by a recording fake (tests/fake_hub.py)."""

import io

import pytest
from fake_hub import FakeHub
from fake_run import run_folder

from goalcover_hf import cli
from goalcover_hf.card import END, HEATMAP_NAME, PLOT_NAME, START, read_card

TOKEN = "hf_PLANTEDsecretTOKEN0123456789"


@pytest.fixture
def hub(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_TOKEN", TOKEN)  # found by huggingface_hub itself; goalcover must never echo it
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    fake = FakeHub()
    fake.download_dir = tmp_path / "downloads"
    return fake.install(monkeypatch)


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


def test_push_creates_repo_and_sends_data_then_card(tmp_path, hub, capsys):
    import pyarrow.parquet as pq

    run = run_folder(tmp_path / "run")
    assert cli.main(["push", str(run), "--repo-id", "me/meds", "--private"]) == 0
    out, err = capsys.readouterr()
    assert "https://huggingface.co/datasets/me/meds" in out
    assert ("create_repo", {"repo_id": "me/meds", "repo_type": "dataset", "private": True}) in hub.calls
    assert len(hub.commits) == 2  # dataset (+ its card update by datasets), then goalcover's card and charts
    data, card = hub.commits
    parquet = [p for p in data["files"] if p.endswith(".parquet")]
    assert parquet == ["data/train-00000-of-00001.parquet"]
    table = pq.read_table(io.BytesIO(data["files"][parquet[0]]))
    assert table.num_rows == 20 and table.column("id").to_pylist()[:2] == ["r00", "r01"]
    assert "gc_states_dose_score" in table.column_names and "gc_states_dose_explanation" in table.column_names
    assert set(card["files"]) == {"README.md", PLOT_NAME, HEATMAP_NAME}
    readme = card["files"]["README.md"].decode()
    pushed_by_datasets = data["files"]["README.md"].decode()
    assert "dataset_info:" in readme and "configs:" in readme  # datasets' own card metadata is kept
    assert readme.count(START) == 1 and readme.count(END) == 1
    assert "](https://huggingface.co/datasets/me/meds/viewer/default/train?row=" in readme
    assert card["files"][PLOT_NAME][:4] == b"\x89PNG"
    # the part datasets wrote is unchanged byte for byte: goalcover only added its key and section
    assert pushed_by_datasets.split("\n---\n", 1)[1] in readme
    header = pushed_by_datasets.split("\n---\n", 1)[0]
    assert readme.startswith(header)
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
    assert cli.main(["card", str(run), "--repo-id", "me/meds"]) == 0
    assert len(hub.commits) == 1
    (commit,) = hub.commits
    assert set(commit["files"]) == {"README.md", PLOT_NAME, HEATMAP_NAME} and commit["deleted"] == []
    first = commit["files"]["README.md"].decode()
    assert first.startswith("---\nlicense: mit # keep\ntags:\n- medical\ngoalcover:\n")
    assert first.split("\n---\n", 1)[1].startswith("# Meds\n\nWritten by hand.\n\n" + START)
    assert cli.main(["card", str(run), "--repo-id", "me/meds", "--min-coverage", "0.9"]) == 0
    second = hub.commits[-1]["files"]["README.md"].decode()
    assert second != first
    assert second[second.index(END):] == first[first.index(END):]
    assert second.split("\ngoalcover:\n")[0] == first.split("\ngoalcover:\n")[0]
    assert hub.files("me/meds")["data/train.parquet"] == b"PAR1"
    assert read_card("me/meds")["target"]["min_fraction"] == 0.9
    _no_token_anywhere(hub, *capsys.readouterr(), folders=[run])


def test_hub_errors_are_clear(tmp_path, hub, capsys, monkeypatch):
    from huggingface_hub import constants

    run = run_folder(tmp_path / "run")
    assert cli.main(["card", str(run), "--repo-id", "me/absent"]) == 2
    assert "no such dataset repo" in capsys.readouterr().err
    assert cli.main(["push", str(run), "--repo-id", "not a repo"]) == 2
    assert "USER/NAME" in capsys.readouterr().err
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert cli.main(["push", str(run), "--repo-id", "me/meds"]) == 2
    assert "HF_HUB_OFFLINE" in capsys.readouterr().err
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setenv("HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-tokens"))
    assert cli.main(["push", str(run), "--repo-id", "me/meds"]) == 2
    assert "hf auth login" in capsys.readouterr().err
    assert hub.commits == [] and not any(name == "create_repo" for name, _ in hub.calls)
