"""Labels: the append-only journal, importing labels from files, and choosing which pairs to ask about."""

import csv
import json
import os

import numpy as np
import pytest

from goalcover_hf.calibration import score_strata
from goalcover_hf.errors import GoalcoverError
from goalcover_hf.label_import import LabelConflictError, LabelImportError, import_labels
from goalcover_hf.labels import LABELS_FILE, Labels, LabelsError, pick_pairs


class Rows:
    """The little of a dataset import_labels uses: len() and a column by name."""

    def __init__(self, **columns):
        self.columns = columns
        self.column_names = list(columns)

    def __len__(self):
        return len(next(iter(self.columns.values())))

    def __getitem__(self, name):
        return self.columns[name]


@pytest.fixture
def dataset():
    return Rows(id=[f"q{i}" for i in range(10)], text=[f"sample {i}" for i in range(10)])


# ---- the journal -------------------------------------------------------------------------------------------------
def test_add_writes_each_label_to_disk_at_once_and_fsyncs(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    labels = Labels.load(tmp_path)
    labels.add(3, "states_dose", 1)
    assert Labels.load(tmp_path).pairs() == {(3, "states_dose"): 1}  # a second reader sees it before anything else
    labels.add(4, "states_dose", 0, id="q4")
    assert len(synced) >= 2
    lines = (tmp_path / LABELS_FILE).read_text().splitlines()
    assert [json.loads(line)["row"] for line in lines] == [3, 4]
    assert json.loads(lines[1])["id"] == "q4" and json.loads(lines[1])["source"] == "session"


def test_load_needs_an_existing_run_folder_or_a_jsonl_file(tmp_path):
    with pytest.raises(LabelsError, match="no such run folder"):
        Labels.load(tmp_path / "typo")
    assert Labels.load(tmp_path / "other.jsonl").pairs() == {}
    assert Labels.load(tmp_path).path == tmp_path / LABELS_FILE


def test_latest_label_wins_and_for_subgoal(tmp_path):
    labels = Labels.load(tmp_path / LABELS_FILE)
    labels.add(1, "a", 1)
    labels.add(2, "b", 0)
    labels.add(1, "a", 0)
    assert labels.pairs() == {(1, "a"): 0, (2, "b"): 0}
    assert labels.for_subgoal("a") == {1: 0}
    assert labels.for_subgoal("c") == {}
    assert len(labels) == 2
    assert Labels.load(tmp_path).pairs() == labels.pairs()


def test_undo_appends_and_never_rewrites(tmp_path):
    labels = Labels.load(tmp_path)
    labels.add(1, "a", 1)
    labels.add(1, "a", 0)  # a change of mind: the earlier answer is still in the file
    labels.add(2, "a", 1, source="import")
    before = (tmp_path / LABELS_FILE).read_bytes()
    assert labels.undo(source="session")["label"] == 0  # the import is not a session answer
    after = (tmp_path / LABELS_FILE).read_bytes()
    assert after.startswith(before) and len(after) > len(before)
    assert labels.pairs() == {(1, "a"): 1, (2, "a"): 1}  # undoing the change brings the first answer back
    assert Labels.load(tmp_path).pairs() == labels.pairs()
    assert labels.undo()["row"] == 2
    assert labels.undo()["label"] == 1
    assert labels.undo() is None
    assert Labels.load(tmp_path).pairs() == {}


def test_a_line_cut_short_by_a_kill_is_skipped_and_the_next_label_starts_a_new_line(tmp_path):
    labels = Labels.load(tmp_path)
    labels.add(1, "a", 1)
    with open(tmp_path / LABELS_FILE, "ab") as fh:
        fh.write(b'{"row": 2, "subgoal": "a", "la')
    reloaded = Labels.load(tmp_path)
    assert reloaded.pairs() == {(1, "a"): 1}
    reloaded.add(3, "a", 0)
    text = (tmp_path / LABELS_FILE).read_text()
    assert '"la\n' in text  # the torn bytes are kept as they were, never rewritten
    assert Labels.load(tmp_path).pairs() == {(1, "a"): 1, (3, "a"): 0}


def test_a_bad_line_in_the_middle_is_an_error_naming_it(tmp_path):
    path = tmp_path / LABELS_FILE
    path.write_text('{"row": 1, "subgoal": "a", "label": 1}\n{"row": 2, "subgoal": "a", "label": 7}\n'
                    '{"row": 3, "subgoal": "a", "label": 0}\n')
    with pytest.raises(LabelsError, match=rf"{LABELS_FILE}, line 2: field 'label' must be 0 or 1"):
        Labels.load(path)
    path.write_text('not json\n{"row": 1, "subgoal": "a", "label": 1}\n')
    with pytest.raises(LabelsError, match="line 1: not valid JSON"):
        Labels.load(path)


@pytest.mark.parametrize("row, label, source, message", [
    (-1, 1, "session", "row must be"), (1, 2, "session", "label must be"), (1, 1.0, "session", "label must be"),
    (True, 1, "session", "row must be"), (1, 1, "guess", "source must be"),
])
def test_add_refuses_bad_values(tmp_path, row, label, source, message):
    labels = Labels.load(tmp_path)
    with pytest.raises(LabelsError, match=message):
        labels.add(row, "a", label, source=source)
    assert not (tmp_path / LABELS_FILE).exists()
    assert issubclass(LabelsError, GoalcoverError)


def test_save_appends_what_is_pending_only(tmp_path):
    path = tmp_path / LABELS_FILE
    Labels.load(path).add(9, "a", 1)
    memory = Labels()
    memory.add(1, "a", 0)
    memory.add(2, "b", 1)
    with pytest.raises(LabelsError, match="no file yet"):
        memory.save()
    assert memory.save(tmp_path) == 2
    assert memory.save() == 0
    assert Labels.load(path).pairs() == {(9, "a"): 1, (1, "a"): 0, (2, "b"): 1}  # the label already there is kept


# ---- import ------------------------------------------------------------------------------------------------------
def write_csv(path, rows, header=("row", "subgoal", "label")):
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_import_csv_jsonl_and_parquet(tmp_path, spec, dataset):
    import pyarrow as pa
    import pyarrow.parquet as pq

    labels = Labels.load(tmp_path)
    result = import_labels(labels, write_csv(tmp_path / "a.csv", [(0, "states_dose", 1), (1, "states_dose", "0")]),
                           dataset, spec)
    assert (result.added, result.present) == (2, 0)
    result = import_labels(labels, write_jsonl(tmp_path / "b.jsonl", [
        {"id": "q2", "subgoal": "warns_side_effects", "label": 1},
        {"id": "q0", "subgoal": "states_dose", "label": True}]), dataset, spec)
    assert (result.added, result.present) == (1, 1)
    pq.write_table(pa.table({"row": [3, 4], "subgoal": ["states_dose"] * 2, "label": [0.0, 1.0]}),
                   tmp_path / "c.parquet")
    assert import_labels(labels, tmp_path / "c.parquet", dataset, spec).added == 2
    expected = {(0, "states_dose"): 1, (1, "states_dose"): 0, (2, "warns_side_effects"): 1, (3, "states_dose"): 0,
                (4, "states_dose"): 1}
    assert Labels.load(tmp_path).pairs() == expected
    records = [json.loads(line) for line in (tmp_path / LABELS_FILE).read_text().splitlines()]
    assert {r["source"] for r in records} == {"import"}
    assert [r.get("id") for r in records if r["row"] == 2] == ["q2"]
    again = import_labels(labels, tmp_path / "a.csv", dataset, spec)
    assert (again.added, again.present) == (0, 2)


def test_import_matches_ids_given_as_numbers_in_a_named_column(tmp_path, spec):
    data = Rows(key=[100, 101, 102], text=["x", "y", "z"])
    path = write_csv(tmp_path / "l.csv", [("102", "states_dose", 1)], header=("id", "subgoal", "label"))
    assert import_labels(Labels.load(tmp_path), path, data, spec, id_column="key").added == 1
    assert Labels.load(tmp_path).pairs() == {(2, "states_dose"): 1}
    with pytest.raises(LabelImportError, match="no column 'id'.*name the dataset's id column"):
        import_labels(Labels.load(tmp_path), path, data, spec)


@pytest.mark.parametrize("rows, message", [
    ([(0, "cites_sources", 1)], r"bad\.csv, line 2: field 'subgoal': unknown subgoal 'cites_sources'"),
    ([(0, "states_dose", 1), (10, "states_dose", 1)], r"bad\.csv, line 3: field 'row': '10' is not a row"),
    ([(0, "states_dose", "yes")], r"line 2: field 'label': 'yes' is not 0 or 1"),
    ([(0, "states_dose", 2)], r"line 2: field 'label': '2' is not 0 or 1"),
    ([(0, "states_dose", "")], r"line 2: missing field 'label'"),
    ([("x", "states_dose", 1)], r"line 2: field 'row': 'x' is not a row"),
])
def test_import_errors_name_file_line_and_field(tmp_path, spec, dataset, rows, message):
    labels = Labels.load(tmp_path)
    labels.add(5, "states_dose", 1)
    before = (tmp_path / LABELS_FILE).read_bytes()
    with pytest.raises(LabelImportError, match=message):
        import_labels(labels, write_csv(tmp_path / "bad.csv", rows), dataset, spec)
    assert (tmp_path / LABELS_FILE).read_bytes() == before  # nothing of a bad file is imported


def test_import_unknown_id_and_missing_columns(tmp_path, spec, dataset):
    labels = Labels.load(tmp_path)
    path = write_jsonl(tmp_path / "ids.jsonl", [{"id": "q1", "subgoal": "states_dose", "label": 1},
                                                {"id": "nope", "subgoal": "states_dose", "label": 1}])
    with pytest.raises(LabelImportError, match=r"ids\.jsonl, line 2: field 'id': unknown id 'nope'"):
        import_labels(labels, path, dataset, spec)
    with pytest.raises(LabelImportError, match=r"missing column 'label' \(columns: row, subgoal\)"):
        import_labels(labels, write_csv(tmp_path / "m.csv", [(0, "states_dose")], header=("row", "subgoal")),
                      dataset, spec)
    with pytest.raises(LabelImportError, match="missing column 'row' or 'id'"):
        import_labels(labels, write_csv(tmp_path / "n.csv", [("states_dose", 1)], header=("subgoal", "label")),
                      dataset, spec)
    with pytest.raises(LabelImportError, match=r"line 1: missing field 'row' or 'id'"):
        import_labels(labels, write_jsonl(tmp_path / "o.jsonl", [{"subgoal": "states_dose", "label": 1}]),
                      dataset, spec)
    with pytest.raises(LabelImportError, match="fields 'row' and 'id' disagree: row 1, but id 'q2' is row 2"):
        import_labels(labels, write_jsonl(tmp_path / "p.jsonl", [{"row": 1, "id": "q2", "subgoal": "states_dose",
                                                                  "label": 1}]), dataset, spec)
    with pytest.raises(LabelImportError, match="unknown file type '.txt'"):
        import_labels(labels, write_jsonl(tmp_path / "q.txt", []), dataset, spec)
    with pytest.raises(LabelImportError, match="no such file"):
        import_labels(labels, tmp_path / "absent.csv", dataset, spec)
    assert not (tmp_path / LABELS_FILE).exists()


def test_import_conflicts_say_where_the_other_label_is(tmp_path, spec, dataset):
    labels = Labels.load(tmp_path)
    with pytest.raises(LabelConflictError, match=r"line 4: row 1, subgoal 'states_dose' is labelled 0 here but 1 on "
                                                 r"line 2"):
        import_labels(labels, write_csv(tmp_path / "c.csv", [(1, "states_dose", 1), (2, "states_dose", 1),
                                                             (1, "states_dose", 0)]), dataset, spec)
    labels.add(2, "states_dose", 0)
    with pytest.raises(LabelConflictError, match=rf"d\.jsonl, line 1: row 2, subgoal 'states_dose' is labelled 1 "
                                                 rf"here but 0 in the run's {LABELS_FILE}"):
        import_labels(labels, write_jsonl(tmp_path / "d.jsonl", [{"id": "q2", "subgoal": "states_dose", "label": 1}]),
                      dataset, spec)
    assert labels.pairs() == {(2, "states_dose"): 0}


def test_import_lists_every_bad_line(tmp_path, spec, dataset):
    rows = [(0, "nope", 1)] * 12
    with pytest.raises(LabelImportError) as err:
        import_labels(Labels.load(tmp_path), write_csv(tmp_path / "many.csv", rows), dataset, spec)
    assert "line 11" in str(err.value) and "and 2 more" in str(err.value)


# ---- picking pairs -----------------------------------------------------------------------------------------------
def world(rows=500, seed=0):
    rng = np.random.default_rng(seed)
    a = np.round(1 + 4 * rng.beta(4, 1, size=rows), 2)  # most rows high, a few at every level
    b = np.round(rng.uniform(1, 5, size=rows), 2)
    scores = {"a": [float(x) for x in a], "b": [float(x) for x in b]}
    scores["b"][7] = None
    return scores


def by_subgoal(pairs):
    out = {}
    for row, sub in pairs:
        out.setdefault(sub, []).append(row)
    return out


def test_pick_pairs_spreads_over_every_score_level(spec):
    scores = world()
    pairs = pick_pairs(scores, per_subgoal=40, seed=1)
    picked = by_subgoal(pairs)
    assert {k: len(v) for k, v in picked.items()} == {"a": 40, "b": 40}
    assert len(set(pairs)) == len(pairs)
    for sub, rows in picked.items():
        levels_all = set(score_strata([x for x in scores[sub] if x is not None]).tolist())
        assert set(score_strata([scores[sub][r] for r in rows]).tolist()) == levels_all
    # every level at least one label, the rest in proportion to the rows: no level more than a label off its share
    for sub, rows in picked.items():
        levels = score_strata([x for x in scores[sub] if x is not None])
        got = np.bincount(score_strata([scores[sub][r] for r in rows]), minlength=6)[1:]
        share = 40 * np.bincount(levels, minlength=6)[1:] / len(levels)
        assert np.all(np.abs(got - share) < 1 + 1e-9) or np.all(got[share < 1] == 1)
        assert np.all(got[share >= 1] >= np.floor(share[share >= 1]) - 1)
    few = pick_pairs({"a": [1.0] * 90 + [5.0] * 10}, per_subgoal=10, seed=0)
    assert sorted(score_strata([1.0] * 90 + [5.0] * 10)[[r for r, _ in few]].tolist()) == [1] * 9 + [5]
    two = pick_pairs({"a": [1.0] * 99 + [5.0]}, per_subgoal=2, seed=0)  # the lone top row is seen all the same
    assert 99 in [r for r, _ in two]
    assert 7 not in picked["b"]


def test_pick_pairs_is_seeded_and_keeps_a_rows_subgoals_together():
    scores = world()
    pairs = pick_pairs(scores, 30, seed=3)
    assert pairs == pick_pairs(scores, 30, seed=3)
    assert pairs != pick_pairs(scores, 30, seed=4)
    rows = [r for r, _ in pairs]
    for r in set(rows):  # a row's pairs are consecutive
        where = [i for i, x in enumerate(rows) if x == r]
        assert where == list(range(where[0], where[0] + len(where)))


def test_pick_pairs_continues_the_same_plan_after_some_answers():
    scores = world()
    plan = pick_pairs(scores, 25, seed=2)
    done = {pair: 1 for pair in plan[:17]}
    rest = pick_pairs(scores, 25, seed=2, already=done)
    assert rest == plan[17:]
    assert pick_pairs(scores, 25, seed=2, already={pair: 0 for pair in plan}) == []
    more = pick_pairs(scores, 35, seed=2, already={pair: 0 for pair in plan})  # a larger target tops up
    assert {k: len(v) for k, v in by_subgoal(more).items()} == {"a": 10, "b": 10}
    assert not set(more) & set(plan)


def test_pick_pairs_with_few_rows_or_none_scored():
    assert sorted(pick_pairs({"a": [1.0, 5.0, None, 3.0]}, 10, seed=0)) == [(0, "a"), (1, "a"), (3, "a")]
    assert pick_pairs({"a": [None, None]}, 5, seed=0) == []
    assert pick_pairs({"a": [2.0, 4.0]}, 1, seed=0, row_ids=[10, 11])[0][0] in (10, 11)


def test_add_many_writes_all_or_nothing(tmp_path):
    labels = Labels.load(tmp_path)
    with pytest.raises(LabelsError, match="label must be"):
        labels.add_many([(1, "a", 1, None), (2, "a", 5, None)])
    assert not (tmp_path / LABELS_FILE).exists() and labels.pairs() == {}
    assert labels.add_many([(1, "a", 1, "q1"), (2, "a", 0, None)]) == 2
    assert Labels.load(tmp_path).pairs() == {(1, "a"): 1, (2, "a"): 0}
